package finch

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"net/url"
	"strconv"

	"github.com/finchconnect/finchconnect"
)

// DocumentRef is an entry of GET /employer/documents: a tax form, fetched
// in full with [Client.Document].
type DocumentRef struct {
	ID           string `json:"id"`
	IndividualID string `json:"individual_id,omitempty"`
	Type         string `json:"type"` // w4_2020 or w4_2005
	URL          string `json:"url,omitempty"`
	Year         int    `json:"year"`
}

// DocumentPage is one page of GET /employer/documents.
type DocumentPage struct {
	Documents []DocumentRef `json:"documents"`
	Paging    Paging        `json:"paging"`
}

// DocumentOptions filters and pages [Client.DocumentsPage].
type DocumentOptions struct {
	IndividualIDs []string
	Types         []string // w4_2020, w4_2005
	Limit         int      // 0 leaves it to Finch
	Offset        int
	EntityID      string // see [WithEntityID]
}

// Document is a tax form, from GET /employer/documents/{document_id}.
// Exactly one of W42020 and W42005 is set, by Type; Data keeps the raw
// form for types this client does not know.
type Document struct {
	Type   string          `json:"type"`
	Year   int             `json:"year"`
	Data   json.RawMessage `json:"data"`
	W42020 *W42020         `json:"-"`
	W42005 *W42005         `json:"-"`
}

// W42020 is the 2020-onward W-4. Amounts are in cents.
type W42020 struct {
	IndividualID                       string `json:"individual_id"`
	FilingStatus                       string `json:"filing_status,omitempty"` // single_or_married_filing_separately, married_filing_jointly_or_qualifying_surviving_spouse, head_of_household
	AmountForQualifyingChildrenUnder17 int64  `json:"amount_for_qualifying_children_under_17"`
	AmountForOtherDependents           int64  `json:"amount_for_other_dependents"`
	TotalClaimDependentAndOtherCredits int64  `json:"total_claim_dependent_and_other_credits"`
	OtherIncome                        int64  `json:"other_income"`
	Deductions                         int64  `json:"deductions"`
	ExtraWithholding                   int64  `json:"extra_withholding"`
}

// W42005 is the 2005–2019 W-4. AdditionalWithholding is in cents.
type W42005 struct {
	IndividualID            string `json:"individual_id"`
	FilingStatus            string `json:"filing_status,omitempty"` // single, married, married_but_withhold_at_higher_single_rate
	Exemption               string `json:"exemption,omitempty"`     // exempt or non_exempt
	AdditionalWithholding   int64  `json:"additional_withholding"`
	TotalNumberOfAllowances int    `json:"total_number_of_allowances"`
}

// UnmarshalJSON decodes a document and its form by type.
func (d *Document) UnmarshalJSON(b []byte) error {
	type plain Document
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*d = Document(p)
	switch d.Type {
	case "w4_2020":
		d.W42020 = new(W42020)
		return json.Unmarshal(d.Data, d.W42020)
	case "w4_2005":
		d.W42005 = new(W42005)
		return json.Unmarshal(d.Data, d.W42005)
	}
	return nil
}

// DocumentsPage returns one page of the company's documents, with
// GET /employer/documents. It needs the documents product.
func (c *Client) DocumentsPage(ctx context.Context, token finchconnect.Secret, opts DocumentOptions) (*DocumentPage, error) {
	if opts.Limit < 0 || opts.Offset < 0 {
		return nil, errors.New("finch: documents: Limit and Offset must not be negative")
	}
	q := withEntity(url.Values{}, opts.EntityID)
	for _, id := range opts.IndividualIDs {
		q.Add("individual_ids[]", id)
	}
	for _, t := range opts.Types {
		q.Add("types[]", t)
	}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.Offset > 0 {
		q.Set("offset", strconv.Itoa(opts.Offset))
	}
	return get[DocumentPage](ctx, c, token, "/employer/documents", q)
}

// Documents iterates over every document from opts.Offset, page by page,
// with the paging rule of [Client.Directory].
func (c *Client) Documents(ctx context.Context, token finchconnect.Secret, opts DocumentOptions) iter.Seq2[DocumentRef, error] {
	return offsetPages("documents", opts.Offset, func(offset int) ([]DocumentRef, Paging, error) {
		opts.Offset = offset
		page, err := c.DocumentsPage(ctx, token, opts)
		if err != nil {
			return nil, Paging{}, err
		}
		return page.Documents, page.Paging, nil
	})
}

// Document returns one document with its form, with
// GET /employer/documents/{document_id}.
func (c *Client) Document(ctx context.Context, token finchconnect.Secret, documentID string, opts ...RequestOption) (*Document, error) {
	if err := checkID("document id", documentID); err != nil {
		return nil, err
	}
	return get[Document](ctx, c, token, "/employer/documents/"+documentID, entityQuery(opts))
}
