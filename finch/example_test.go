package finch_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/finch"
	"github.com/finchconnect/finchconnect/sandbox"
)

// ExampleClient_ExchangeCode walks the back-end half of Connect against the
// offline sandbox: create a session, let the employer sign in, exchange the
// code from the callback, and read the employer's company with the token.
func ExampleClient_ExchangeCode() {
	// An offline Finch, mounted under /finch as a real deployment might be.
	mux := http.NewServeMux()
	ts := httptest.NewServer(mux)
	defer ts.Close()
	sb, err := sandbox.New(sandbox.Options{PublicURL: ts.URL + "/finch"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sb.Close()
	mux.Handle("/finch/", http.StripPrefix("/finch", sb))

	client := &finch.Client{
		BaseURL:      ts.URL + "/finch", // default: https://api.tryfinch.com
		ClientID:     sandbox.DefaultClientID,
		ClientSecret: finchconnect.NewSecret(sandbox.DefaultClientSecret),
	}
	ctx := context.Background()
	const redirectURI = "http://localhost:3000/callback"

	sess, err := client.NewConnectSession(ctx, finch.SessionRequest{
		CustomerID: "customer-1", CustomerName: "Acme", Products: []string{"company", "directory"},
		RedirectURI: redirectURI,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// The employer opens sess.ConnectURL and signs in; Connect redirects
	// the browser to redirectURI?code=…, and the callback takes the code
	// (after checking its state).
	code, err := signIn(sess.ConnectURL, "authorized_simple")
	if err != nil {
		fmt.Println(err)
		return
	}

	// Exchange once. On any error, never retry with the same code: send
	// the employer through Connect again.
	conn, err := client.ExchangeCode(ctx, code, redirectURI)
	if err != nil {
		fmt.Println(err)
		return
	}
	company, err := client.Company(ctx, conn.AccessToken)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("provider:", conn.ProviderID)
	fmt.Println("products:", conn.Products)
	fmt.Println("token:", conn.AccessToken) // a Secret prints redacted
	fmt.Println("company has a name:", company.LegalName != "")
	// Output:
	// provider: gusto
	// products: [company directory]
	// token: [redacted]
	// company has a name: true
}

// signIn plays the employer at the sandbox's Connect page (provider Gusto,
// the scenario login given, password letmein) and returns the code from
// the redirect.
func signIn(connectURL, username string) (string, error) {
	u, err := url.Parse(connectURL)
	if err != nil {
		return "", err
	}
	form := url.Values{
		"session":  {u.Query().Get("session")},
		"provider": {"gusto"},
		"step":     {"credentials"},
		"username": {username},
		"password": {"letmein"},
	}
	u.RawQuery = ""
	browser := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := browser.PostForm(u.String(), form)
	if err != nil {
		return "", err
	}
	res.Body.Close()
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		return "", errors.New("sign-in did not redirect with a code")
	}
	return loc.Query().Get("code"), nil
}
