package finch_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/finch"
)

// ExampleClient_ExchangeCode shows the back-end half of Connect: exchange
// the code from the callback (after checking its state), keep the token,
// and read the employer's company with it.
func ExampleClient_ExchangeCode() {
	client := &finch.Client{
		ClientID:     os.Getenv("FINCH_CLIENT_ID"),
		ClientSecret: finchconnect.Secret(os.Getenv("FINCH_CLIENT_SECRET")),
	}
	ctx := context.Background()
	// The redirect flow sends redirect_uri; the embedded flow passes "".
	conn, err := client.ExchangeCode(ctx, "code-from-the-callback", "https://app.example.com/callback")
	if err != nil {
		log.Fatal(err) // never retry: a code works once
	}
	company, err := client.Company(ctx, conn.AccessToken)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(conn.ConnectionID, company.LegalName)
}
