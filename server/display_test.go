package server

import (
	"net/url"
	"testing"
)

func TestDisplayNames(t *testing.T) {
	tests := []struct {
		what, got, want string
	}{
		{"paychex_flex", providerName("paychex_flex"), "Paychex Flex"},
		{"gusto", providerName("gusto"), "Gusto"},
		{"bamboo_hr", providerName("bamboo_hr"), "BambooHR"},
		{"an unknown provider", providerName("acme_hr_api"), "Acme HR API"},
		{"no provider", providerName(""), "—"},
		{"reauth", statusName("reauth"), "Needs re-authentication"},
		{"connected", statusName("connected"), "Connected"},
		{"error_permissions", statusName("error_permissions"), "Missing permissions"},
		{"an unknown status", statusName("on_hold"), "On hold"},
		{"S corporation", entityName("corporation", "s_corporation"), "S corporation"},
		{"C corporation", entityName("corporation", "c_corporation"), "C corporation"},
		{"plain corporation", entityName("corporation", ""), "Corporation"},
		{"LLC", entityName("llc", ""), "LLC"},
		{"LLC taxed as an S corporation", entityName("llc", "s_corporation"), "LLC (S corporation)"},
		{"sole proprietor", entityName("sole_proprietor", ""), "Sole proprietorship"},
		{"an unknown entity", entityName("trust", ""), "Trust"},
		{"no entity", entityName("", ""), ""},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.what, tt.got, tt.want)
		}
	}
}

func TestMaskSSN(t *testing.T) {
	for in, want := range map[string]string{
		"123-45-6789":  "•••-••-6789",
		"123456789":    "•••-••-6789",
		" 123 45 6789": "•••-••-6789",
		"6789":         "•••-••-••••",
		"":             "•••-••-••••",
	} {
		if got := maskSSN(in); got != want {
			t.Errorf("maskSSN(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNumAndMoney(t *testing.T) {
	for n, want := range map[int]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 3000: "3,000", 1234567: "1,234,567", -4500: "-4,500"} {
		if got := num(n); got != want {
			t.Errorf("num(%d) = %q, want %q", n, got, want)
		}
	}
	tests := []struct {
		cents    int64
		currency string
		want     string
	}{
		{645637, "usd", "$6,456.37"}, {5, "", "$0.05"}, {-1200, "usd", "−$12.00"}, {100000, "eur", "1,000.00 EUR"},
	}
	for _, tt := range tests {
		if got := money(tt.cents, tt.currency); got != tt.want {
			t.Errorf("money(%d, %q) = %q, want %q", tt.cents, tt.currency, got, tt.want)
		}
	}
}

// TestListQuery_RoundTrip: a list's link reads back as the same list, and
// leaves out what is the default.
func TestListQuery_RoundTrip(t *testing.T) {
	tests := []struct {
		q    listQuery
		link string
	}{
		{listQuery{Sort: sortNewest, Page: 1}, "/base/"},
		{listQuery{Search: "Acme & Sons", Provider: "gusto", Status: "reauth", Sort: sortName, Page: 3}, "/base/?page=3&provider=gusto&q=Acme+%26+Sons&sort=name&status=reauth"},
	}
	for _, tt := range tests {
		link := tt.q.link("/base")
		if link != tt.link {
			t.Errorf("link = %q, want %q", link, tt.link)
		}
		u, _ := url.Parse(link)
		if back := parseListQuery(u.Query()); back != tt.q {
			t.Errorf("parse(link(%+v)) = %+v", tt.q, back)
		}
	}
	if q := parseListQuery(url.Values{"sort": {"bogus"}, "page": {"-4"}}); q.Sort != sortNewest || q.Page != 1 {
		t.Errorf("bad sort and page read as %+v, want newest and page 1", q)
	}
}
