package main

import (
	"flag"
	"net/http"
)

// apiFlags are the settings of the app-facing /v1 API.
// TODO(issue 7): the /v1 API, API keys and the proxy.
type apiFlags struct{}

func registerAPIFlags(fs *flag.FlagSet) *apiFlags { return &apiFlags{} }

// mountAPI adds the /v1 API to mux.
func mountAPI(mux *http.ServeMux, f *apiFlags, d *appDeps) error { return nil }
