package server

import (
	"strings"

	"github.com/finchconnect/finchconnect"
)

// providerNames are the display names of the providers Finch lists in
// GET /providers (the sandbox's list, and the ids Finch's retired sandbox
// listed: finch-api-more.md §sandbox). A provider missing here is shown by
// providerName's guess from its id.
var providerNames = map[string]string{
	"adp_run":           "ADP RUN",
	"adp_workforce_now": "ADP Workforce Now",
	"bamboo_hr":         "BambooHR",
	"bamboo_hr_api":     "BambooHR (API)",
	"bob":               "HiBob",
	"gusto":             "Gusto",
	"humaans":           "Humaans",
	"insperity":         "Insperity",
	"justworks":         "Justworks",
	"namely":            "Namely",
	"paychex_flex":      "Paychex Flex",
	"paychex_flex_api":  "Paychex Flex (API)",
	"paycom":            "Paycom",
	"paycom_api":        "Paycom (API)",
	"paylocity":         "Paylocity",
	"paylocity_api":     "Paylocity (API)",
	"personio":          "Personio",
	"quickbooks":        "QuickBooks",
	"rippling":          "Rippling",
	"sage_hr":           "Sage HR",
	"sapling":           "Sapling",
	"sequoia_one":       "Sequoia One",
	"square_payroll":    "Square Payroll",
	"trinet":            "TriNet",
	"trinet_api":        "TriNet (API)",
	"workday":           "Workday",
	"zenefits":          "Zenefits",
	"finch":             "Finch",
}

// acronyms are words of a provider id that providerName writes in
// capitals when it guesses a name.
var acronyms = map[string]string{"adp": "ADP", "hr": "HR", "api": "API", "ukg": "UKG", "hris": "HRIS", "peo": "PEO"}

// providerName is the name an operator knows a provider by: "Paychex Flex"
// for paychex_flex. An id it does not know is spelled out from its words.
func providerName(id string) string {
	if n, ok := providerNames[id]; ok {
		return n
	}
	if id == "" {
		return "—"
	}
	return humanWords(id, true)
}

// statusNames say what each connection status means to the operator.
var statusNames = map[string]string{
	finchconnect.StatusPending:             "Pending",
	finchconnect.StatusProcessing:          "Processing",
	finchconnect.StatusConnected:           "Connected",
	finchconnect.StatusErrorNoAccountSetup: "No account set up",
	finchconnect.StatusErrorPermissions:    "Missing permissions",
	finchconnect.StatusReauth:              "Needs re-authentication",
	finchconnect.StatusDisconnected:        "Disconnected",
}

// statusOrder is the order statuses are counted and offered in.
var statusOrder = []string{
	finchconnect.StatusConnected, finchconnect.StatusReauth, finchconnect.StatusPending, finchconnect.StatusProcessing,
	finchconnect.StatusErrorNoAccountSetup, finchconnect.StatusErrorPermissions, finchconnect.StatusDisconnected,
}

// statusName is a status as the pages show it: "Needs re-authentication"
// for reauth.
func statusName(status string) string {
	if n, ok := statusNames[status]; ok {
		return n
	}
	if status == "" {
		return "Unknown"
	}
	return humanWords(status, false)
}

// entityTypes and entitySubtypes name Finch's company entity values
// (finch.CompanyEntity).
var (
	entityTypes = map[string]string{
		"llc": "LLC", "lp": "Limited partnership", "corporation": "Corporation", "sole_proprietor": "Sole proprietorship",
		"non_profit": "Non-profit", "partnership": "Partnership", "cooperative": "Cooperative",
	}
	entitySubtypes = map[string]string{
		"s_corporation": "S corporation", "c_corporation": "C corporation", "b_corporation": "B corporation",
	}
)

// entityName is a company's legal form as a person writes it: "S
// corporation" for a corporation of subtype s_corporation, "LLC (S
// corporation)" for an LLC taxed as one, "" for none.
func entityName(typ, subtype string) string {
	t, ok := entityTypes[typ]
	if !ok && typ != "" {
		t = humanWords(typ, false)
	}
	sub, ok := entitySubtypes[subtype]
	if !ok && subtype != "" {
		sub = humanWords(subtype, false)
	}
	switch {
	case sub == "":
		return t
	case t == "" || typ == "corporation":
		return sub // "S corporation" says it is a corporation
	default:
		return t + " (" + sub + ")"
	}
}

// humanWords spells out an identifier: "error_permissions" becomes "Error
// permissions", or with title "Sage Payroll" for sage_payroll.
func humanWords(id string, title bool) string {
	words := strings.FieldsFunc(id, func(r rune) bool { return r == '_' || r == '-' || r == ' ' })
	for i, w := range words {
		if a, ok := acronyms[strings.ToLower(w)]; ok && title {
			words[i] = a
			continue
		}
		if (title || i == 0) && w != "" {
			words[i] = strings.ToUpper(w[:1]) + w[1:]
		}
	}
	return strings.Join(words, " ")
}
