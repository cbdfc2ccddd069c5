// Package testcert makes throwaway X.509 certificates for tests: a CA, a server certificate for
// 127.0.0.1 and a client certificate, all signed by the CA, generated with crypto/x509 at test
// time so that no key is ever committed.
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"
)

// Set is a CA with a server and a client certificate it signed, in PEM.
type Set struct {
	CAPEM         string
	ServerCert    tls.Certificate // for 127.0.0.1 and localhost
	ClientCertPEM string
	ClientKeyPEM  string
	CAPool        *x509.CertPool
	caCert        *x509.Certificate
	caKey         *ecdsa.PrivateKey
	ServerCertPEM string
	ServerKeyPEM  string
}

// New generates a Set; the client certificate's common name is clientCN.
func New(tb testing.TB, clientCN string) *Set {
	tb.Helper()
	caKey := key(tb)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Aviso test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatalf("create CA: %v", err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	s := &Set{CAPEM: pemOf("CERTIFICATE", caDER), caCert: caCert, caKey: caKey, CAPool: x509.NewCertPool()}
	s.CAPool.AddCert(caCert)
	s.ServerCertPEM, s.ServerKeyPEM = s.issue(tb, 2, &x509.Certificate{Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if s.ServerCert, err = tls.X509KeyPair([]byte(s.ServerCertPEM), []byte(s.ServerKeyPEM)); err != nil {
		tb.Fatalf("server key pair: %v", err)
	}
	s.ClientCertPEM, s.ClientKeyPEM = s.issue(tb, 3, &x509.Certificate{Subject: pkix.Name{CommonName: clientCN},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return s
}

func (s *Set) issue(tb testing.TB, serial int64, tmpl *x509.Certificate) (certPEM, keyPEM string) {
	tb.Helper()
	k := key(tb)
	tmpl.SerialNumber = big.NewInt(serial)
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.caCert, &k.PublicKey, s.caKey)
	if err != nil {
		tb.Fatalf("issue certificate: %v", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		tb.Fatalf("marshal key: %v", err)
	}
	return pemOf("CERTIFICATE", der), pemOf("PRIVATE KEY", kder)
}

func key(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("generate key: %v", err)
	}
	return k
}

func pemOf(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}
