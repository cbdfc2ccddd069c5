// Package aviso is the vocabulary of the Aviso webhook service: tenants, endpoints, event types,
// events, deliveries and attempts; their validation; the Store that persists them; the error type
// every layer speaks; and the retry schedule as a pure function.
//
// It imports only the standard library. Every other package imports it, so dependency cycles
// cannot form: sqlite/ and postgres/ implement Store, dispatch/ delivers, webhook/ signs and
// verifies, service/ holds the operations that api/ (JSON) and web/ (dashboard) both expose.
package aviso

// Version is the version of this build; it is sent in the User-Agent of every delivery.
const Version = "0.1.0"

// UserAgent is the User-Agent header of every request Aviso sends to an endpoint.
const UserAgent = "Aviso/" + Version
