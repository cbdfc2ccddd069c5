package service

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/webhook"
)

// Endpoint credentials are write-only. The API takes a custom header either as a string (a plain
// header, shown back as it is) or as {"value": "…", "secret": true} (shown back as
// {"value": "••••", "secret": true}); auth secrets (password, token, client_secret, key_pem) are
// shown as "••••". An update that sends "••••" back keeps the stored value, so a client may PATCH
// what it read. The signing keys and the TusFacturas token are read through the secret route only.

// UnmarshalJSON reads an EndpointInput, splitting "headers" into Headers and SecretHeaders.
// Unknown fields are refused, as the API's decoder refuses them elsewhere.
func (in *EndpointInput) UnmarshalJSON(b []byte) error {
	type plain EndpointInput
	var aux struct {
		plain
		Headers map[string]json.RawMessage `json:"headers"`
	}
	if err := strictUnmarshal(b, &aux); err != nil {
		return err
	}
	*in = EndpointInput(aux.plain)
	var err error
	in.Headers, in.SecretHeaders, err = splitHeaders(aux.Headers)
	return err
}

// UnmarshalJSON reads an EndpointPatch: "headers" replaces plain and secret headers together,
// and "auth": null removes the auth (Auth with an empty Type).
func (in *EndpointPatch) UnmarshalJSON(b []byte) error {
	type plain EndpointPatch
	var aux struct {
		plain
		Headers map[string]json.RawMessage `json:"headers"`
		Auth    json.RawMessage            `json:"auth"`
	}
	if err := strictUnmarshal(b, &aux); err != nil {
		return err
	}
	*in = EndpointPatch(aux.plain)
	if aux.Headers != nil {
		h, sh, err := splitHeaders(aux.Headers)
		if err != nil {
			return err
		}
		in.Headers, in.SecretHeaders = &h, &sh
	}
	switch {
	case len(aux.Auth) == 0:
	case string(aux.Auth) == "null":
		in.Auth = &aviso.Auth{}
	default:
		in.Auth = new(aviso.Auth)
		if err := strictUnmarshal(aux.Auth, in.Auth); err != nil {
			return err
		}
	}
	return nil
}

// strictUnmarshal decodes refusing unknown fields. A type error names the field as the client
// wrote it, without the embedded struct that UnmarshalJSON decodes through.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		typ.Field = strings.TrimPrefix(typ.Field, "plain.")
	}
	return err
}

// splitHeaders sorts the API's headers object into plain and secret headers.
func splitHeaders(raw map[string]json.RawMessage) (plain, secret map[string]string, err error) {
	plain, secret = map[string]string{}, map[string]string{}
	for k, v := range raw {
		var s string
		if json.Unmarshal(v, &s) == nil {
			plain[k] = s
			continue
		}
		var sh aviso.SecretHeader
		if err := strictUnmarshal(v, &sh); err != nil {
			return nil, nil, aviso.Invalid("headers", "%q must be a string or {\"value\": \"…\", \"secret\": true}", k)
		}
		if sh.Secret {
			secret[k] = sh.Value
		} else {
			plain[k] = sh.Value
		}
	}
	return plain, secret, nil
}

// keepRedacted puts back the stored value of every write-only field sent as aviso.Redacted: the
// auth's secrets when the auth type is unchanged, and secret headers of the same name. A
// placeholder with nothing stored behind it is left for validation to refuse.
func keepRedacted(ep *aviso.Endpoint, old *aviso.Endpoint) {
	if ep.Auth != nil && old.Auth != nil && ep.Auth.Type == old.Auth.Type {
		cur, prev := ep.Auth.SecretFields(), old.Auth.SecretFields()
		for i, f := range cur {
			if *f == aviso.Redacted {
				*f = *prev[i]
			}
		}
	}
	for k, v := range ep.SecretHeaders {
		if v != aviso.Redacted {
			continue
		}
		for ok, ov := range old.SecretHeaders {
			if strings.EqualFold(k, ok) {
				ep.SecretHeaders[k] = ov
			}
		}
	}
}

// checkRedacted refuses a secret header still holding the placeholder (auth placeholders are
// refused by Endpoint.Validate).
func checkRedacted(ep *aviso.Endpoint) error {
	for k, v := range ep.SecretHeaders {
		if v == aviso.Redacted {
			return aviso.Invalid("/headers/"+k, "holds the redacted placeholder %q; send the real value", aviso.Redacted)
		}
	}
	return nil
}

// newSigningKey returns a fresh key of the endpoint's signing scheme.
func newSigningKey(signing string) string {
	if signing == aviso.SigningEd25519 {
		return webhook.NewSigningKey()
	}
	return webhook.NewSecret()
}
