package sandbox

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Documents are the employees' W-4 forms (Finch's /employer/documents,
// finch-api-more.md §4), derived from each person like the rest of the
// data: an employee who started in 2020 or later filed the 2020 form in
// the year they started; one who started before filed the 2005 form
// then, and one in three of those filed a 2020 form since. Contractors
// (1099) file no W-4.

var documentTypes = []string{"w4_2020", "w4_2005"}

type document struct {
	ID, IndividualID, Type string
	Year                   int
	Data                   map[string]any
}

// personRNG is a random stream of connection c for person id and purpose,
// for people added by POST /sandbox/directory as much as generated ones.
func (c *connection) personRNG(id, purpose string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(purpose + "\x00" + id))
	return rand.New(rand.NewPCG(c.Seed^0x5eed_d0c5, h.Sum64()))
}

func uuidFrom(r *rand.Rand) string {
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xfff, r.Uint32()&0x3fff|0x8000, r.Uint64()&0xffffffffffff)
}

// documents returns the W-4s of people, in their order, oldest first for
// each person.
func (c *connection) documents(people []person, now time.Time) []document {
	var out []document
	for _, p := range people {
		if p.Subtype == "individual_contractor" {
			continue
		}
		start, err := time.Parse(time.DateOnly, p.Start)
		if err != nil {
			continue
		}
		r := c.personRNG(p.ID, "w4")
		married := p.Marital == "married" || p.Marital == "domestic_partner"
		if start.Year() < 2020 {
			out = append(out, c.w42005(p, start.Year(), married, r))
			if r.IntN(3) == 0 {
				year := 2020 + r.IntN(max(now.Year()-2020, 0)+1)
				out = append(out, c.w42020(p, year, married, r))
			}
			continue
		}
		out = append(out, c.w42020(p, start.Year(), married, r))
	}
	return out
}

func (c *connection) w42020(p person, year int, married bool, r *rand.Rand) document {
	status := "single_or_married_filing_separately"
	switch {
	case married:
		status = "married_filing_jointly_or_qualifying_surviving_spouse"
	case r.IntN(5) == 0:
		status = "head_of_household"
	}
	children := int64(r.IntN(3)) * 200000 // $2,000 per qualifying child
	others := int64(r.IntN(2)) * 50000    // $500 per other dependent
	var otherIncome, deductions, extra int64
	if r.IntN(4) == 0 {
		otherIncome = int64(1+r.IntN(20)) * 100000
	}
	if r.IntN(4) == 0 {
		deductions = int64(1+r.IntN(10)) * 100000
	}
	if r.IntN(3) == 0 {
		extra = int64(1+r.IntN(10)) * 2500
	}
	return document{
		ID: uuidFrom(c.personRNG(p.ID, fmt.Sprint("w4_2020:", year))), IndividualID: p.ID, Type: "w4_2020", Year: year,
		Data: map[string]any{
			"individual_id": p.ID, "filing_status": status,
			"amount_for_qualifying_children_under_17": children, "amount_for_other_dependents": others,
			"total_claim_dependent_and_other_credits": children + others,
			"other_income": otherIncome, "deductions": deductions, "extra_withholding": extra,
		},
	}
}

func (c *connection) w42005(p person, year int, married bool, r *rand.Rand) document {
	status := "single"
	if married {
		status = "married"
		if r.IntN(4) == 0 {
			status = "married_but_withhold_at_higher_single_rate"
		}
	}
	exemption := "non_exempt"
	if r.IntN(20) == 0 {
		exemption = "exempt"
	}
	var extra int64
	if r.IntN(3) == 0 {
		extra = int64(1+r.IntN(10)) * 2500
	}
	return document{
		ID: uuidFrom(c.personRNG(p.ID, fmt.Sprint("w4_2005:", year))), IndividualID: p.ID, Type: "w4_2005", Year: year,
		Data: map[string]any{
			"individual_id": p.ID, "filing_status": status, "exemption": exemption,
			"additional_withholding": extra, "total_number_of_allowances": r.IntN(5), // a count, whatever the SDK's comment says
		},
	}
}

// handleDocuments is GET /employer/documents: {documents, paging},
// filtered by individual_ids and types, paged by limit (default all) and
// offset. paging.count is the number of documents matching the filters.
func (s *Server) handleDocuments(w http.ResponseWriter, r *http.Request, c *connection, entity string) {
	q := r.URL.Query()
	var problems []string
	types := queryList(q, "types")
	for _, t := range types {
		if !slices.Contains(documentTypes, t) {
			problems = append(problems, "types: unknown document type "+t+" (one of w4_2020, w4_2005)")
		}
	}
	offset, limit := 0, -1
	for _, p := range []struct {
		name string
		dst  *int
	}{{"offset", &offset}, {"limit", &limit}} {
		if v := q.Get(p.name); v != "" {
			n, ok := nonNegative(v)
			if !ok {
				problems = append(problems, p.name+" must be a non-negative integer")
				continue
			}
			*p.dst = n
		}
	}
	if problems != nil {
		badRequest(w, strings.Join(problems, "; "))
		return
	}
	ids := queryList(q, "individual_ids")
	var docs []document
	for _, d := range c.documents(s.peopleOf(c, entity), s.now()) {
		if len(ids) > 0 && !slices.Contains(ids, d.IndividualID) || len(types) > 0 && !slices.Contains(types, d.Type) {
			continue
		}
		docs = append(docs, d)
	}
	if limit < 0 {
		limit = len(docs)
	}
	out := []any{}
	base := s.publicURL(r)
	for _, d := range page(docs, offset, limit) {
		out = append(out, map[string]any{"id": d.ID, "individual_id": d.IndividualID, "type": d.Type, "url": base + "/employer/documents/" + d.ID, "year": d.Year})
	}
	writeJSON(w, http.StatusOK, map[string]any{"documents": out, "paging": map[string]int{"offset": offset, "count": len(docs)}})
}

// handleDocument is GET /employer/documents/{document_id}: the W-4,
// {type, year, data}.
func (s *Server) handleDocument(w http.ResponseWriter, r *http.Request, c *connection, entity string) {
	id := r.PathValue("document_id")
	for _, d := range c.documents(s.peopleOf(c, entity), s.now()) {
		if d.ID == id {
			writeJSON(w, http.StatusOK, map[string]any{"type": d.Type, "year": d.Year, "data": d.Data})
			return
		}
	}
	writeError(w, http.StatusNotFound, "not_found_error", "item_not_found", "No such document.")
}
