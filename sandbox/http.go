package sandbox

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeError answers with Finch's error body (finch-api.md §8), with the
// older statusCode and status fields too, as Finch's responses had them.
func writeError(w http.ResponseWriter, status int, name, finchCode, message string) {
	body := map[string]any{"code": status, "statusCode": status, "status": status, "name": name, "message": message}
	if finchCode != "" {
		body["finch_code"] = finchCode
	}
	writeJSON(w, status, body)
}

func badRequest(w http.ResponseWriter, message string) {
	writeError(w, http.StatusBadRequest, "bad_request", "invalid_request", message)
}

// decodeBody reads a JSON body of at most 1 MiB into v.
func decodeBody(r *http.Request, v any) error {
	return json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v)
}

// basicAuth checks the client credentials of a Basic-authenticated route.
func (s *Server) basicAuth(w http.ResponseWriter, r *http.Request) bool {
	id, secret, ok := r.BasicAuth()
	if !ok || !s.checkClient(id, secret) {
		writeError(w, http.StatusUnauthorized, "invalid_client_error", "", "Invalid client credentials.")
		return false
	}
	return true
}

// bearerToken returns the token of an "Authorization: Bearer" header. The
// scheme is case-insensitive (RFC 7235 §2.1), so "bearer" works too.
func bearerToken(r *http.Request) string {
	scheme, t, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(t)
}

func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "not_found_error", "item_not_found", "No such route in the sandbox: "+r.Method+" "+r.URL.Path)
}
