package finch

import "slices"

// Products are the product names Finch accepts in a Connect session's
// products and reports in a token's scope (finch-api.md §1.5, from the
// SDK's session enum). "deduction" is the deprecated alias of "benefits"
// that Finch still accepts and grants the same routes to (do not ask for
// both); the plans and recordkeeping products are Finch's newer benefits
// scopes. Do not modify the slice.
var Products = []string{
	"benefits", "company", "deduction", "directory", "documents",
	"employment", "individual", "payment", "pay_statement", "plans",
	"plans_dependents", "plans_enrollments", "recordkeeping", "ssn",
}

// IsProduct reports whether Finch accepts p as a product name.
func IsProduct(p string) bool { return slices.Contains(Products, p) }
