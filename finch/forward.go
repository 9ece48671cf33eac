package finch

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/finchconnect/finchconnect"
)

// ForwardRequest is a request for Finch to send to the provider's own API
// on the connection's behalf, with POST /forward
// (https://developer.tryfinch.com/api-reference/development-guides/Request-Forwarding).
type ForwardRequest struct {
	Method         string            `json:"method"`         // GET, POST, PUT, PATCH or DELETE
	Route          string            `json:"route"`          // the provider's path, e.g. "/employees"
	Data           *string           `json:"data,omitempty"` // the body, as a string
	Params         map[string]any    `json:"params,omitempty"`
	RequestHeaders map[string]string `json:"request_headers,omitempty"`
}

// ForwardResponse is the provider's answer as Finch relays it. StatusCode
// is the provider's status; Finch's own call succeeded whatever it is.
type ForwardResponse struct {
	StatusCode int                        `json:"statusCode"`
	Headers    map[string]json.RawMessage `json:"headers,omitempty"`
	Data       *string                    `json:"data,omitempty"`
	Request    struct {
		Method  string            `json:"method"`
		Route   string            `json:"route"`
		Data    json.RawMessage   `json:"data,omitempty"` // a string or an object
		Headers map[string]string `json:"headers,omitempty"`
		Params  map[string]any    `json:"params,omitempty"`
	} `json:"request"`
}

// Forward sends req to the provider through Finch, with POST /forward.
// Whatever the forwarded method, Finch's side is a write (the provider may
// act on it), so it is retried only when it certainly did not reach Finch.
func (c *Client) Forward(ctx context.Context, token finchconnect.Secret, req ForwardRequest) (*ForwardResponse, error) {
	switch strings.ToUpper(req.Method) {
	case "GET", "POST", "PUT", "PATCH", "DELETE":
	default:
		return nil, errors.New("finch: forward: Method must be GET, POST, PUT, PATCH or DELETE")
	}
	if !strings.HasPrefix(req.Route, "/") {
		return nil, errors.New("finch: forward: Route must be a path starting with /")
	}
	return send1[ForwardResponse](ctx, c, token, "POST", "/forward", nil, req)
}
