package server

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/connect"
	"github.com/finchconnect/finchconnect/finch"
)

// products are the Finch products the connect form offers (finch-api.md
// §1.5, without the deprecated "deduction" alias).
var products = []string{"company", "directory", "individual", "employment", "payment", "pay_statement", "benefits", "ssn", "documents"}

type connectForm struct {
	CustomerID   string
	CustomerName string
	Products     []string
}

type productChoice struct {
	Name, Label string
	Checked     bool
}

// validate checks the connect form against Finch's rules for a Connect
// session and returns every problem at once.
func (f connectForm) validate() []string {
	return connect.Problems(connect.FlowRequest{CustomerID: f.CustomerID, CustomerName: f.CustomerName, Products: f.Products})
}

// handleConnect creates a Connect session for an employer, binds the flow to
// this browser with a fresh state, and sends the browser to Connect. With
// Accept: application/json (or mode=embedded) it answers with the Connect
// URL and state instead, for an app page that opens Connect itself; codes of
// such flows are exchanged without redirect_uri.
func (s *Server) handleConnect() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			s.renderError(w, r, http.StatusBadRequest, "The form could not be read.", "Please go back and submit it again.")
			return
		}
		form := connectForm{
			CustomerID:   strings.TrimSpace(r.PostForm.Get("customer_id")),
			CustomerName: strings.TrimSpace(r.PostForm.Get("customer_name")),
			Products:     r.PostForm["products"],
		}
		if form.Products == nil {
			// Nothing ticked is the operator's choice: the form comes back
			// with the error and every box unticked, not with the defaults.
			form.Products = []string{}
		}
		embedded := r.PostForm.Get("mode") == "embedded" || strings.Contains(r.Header.Get("Accept"), "application/json")
		if problems := form.validate(); problems != nil {
			if embedded {
				s.writeJSONError(w, r, http.StatusBadRequest, "invalid_request", strings.Join(problems, " "))
				return
			}
			// Re-show the form with what was typed, so nothing is lost.
			data, err := s.homeData(r, form, problems)
			if err != nil {
				s.fail(w, r, false, err)
				return
			}
			s.render(w, r, http.StatusBadRequest, "home", "Connections", data)
			return
		}
		s.startFlow(w, r, connect.FlowRequest{
			CustomerID: form.CustomerID, CustomerName: form.CustomerName, Products: form.Products,
			Embedded: embedded,
		})
	})
}

// startFlow starts a flow bound to this browser ([connect.Service.StartFlow]:
// the state is recorded before Finch is asked for a session) and hands the
// browser to Connect, or, for an embedded flow, answers with the Connect URL
// and state as JSON.
func (s *Server) startFlow(w http.ResponseWriter, r *http.Request, req connect.FlowRequest) {
	embedded := req.Embedded
	browser, err := s.browserID(w, r)
	if err != nil {
		s.fail(w, r, embedded, err)
		return
	}
	req.Browser = browser
	flow, err := s.protocol.StartFlow(r.Context(), req)
	if err != nil {
		s.fail(w, r, embedded, err)
		return
	}
	if embedded {
		writeJSON(w, http.StatusOK, map[string]string{"session_id": flow.SessionID, "connect_url": flow.ConnectURL, "state": flow.State})
		return
	}
	http.Redirect(w, r, flow.ConnectURL, http.StatusSeeOther)
}

type connectionPage struct {
	Conn finchconnect.Connection
	// Name, Products and Connected are Conn's, formatted for the page.
	Name, Products, Connected string

	NeedsReauth bool
	Company     *companyView
	Directory   *directoryView
	DataError   string
}

func newConnectionPage(conn finchconnect.Connection) connectionPage {
	return connectionPage{
		Conn:        conn,
		Name:        cmp.Or(conn.CustomerName, conn.CustomerID),
		Products:    strings.Join(conn.Products, ", "),
		Connected:   when(conn.CreatedAt),
		NeedsReauth: conn.Status == finchconnect.StatusReauth,
	}
}

// handleConnection shows one employer: the connection's record, the company
// and a page of the directory, read from Finch with the stored token.
func (s *Server) handleConnection() http.Handler {
	const pageSize = 25
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		id := r.PathValue("id")
		conn, err := s.store.Get(ctx, id)
		if err != nil {
			s.fail(w, r, false, storeFailure(err))
			return
		}
		offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		offset = max(offset, 0)
		// The template never sees the token.
		token := conn.AccessToken
		conn.AccessToken = finchconnect.Secret{}
		page := newConnectionPage(conn)

		s.audit(ctx, finchconnect.AuditDecrypted, id, "browser", "company page")
		// The two reads go to Finch at once, so the page waits for the
		// slower of them rather than for both in turn. A failed company
		// read cancels the directory's.
		var (
			dir      *finch.DirectoryPage
			dirErr   error
			dirPanic any
			done     = make(chan struct{})
		)
		dctx, cancel := context.WithCancel(ctx)
		defer cancel()
		if conn.HasProduct("directory") {
			go func() {
				defer close(done)
				defer func() { dirPanic = recover() }()
				dir, dirErr = s.finch.DirectoryPage(dctx, token, finch.DirectoryOptions{Limit: pageSize, Offset: offset})
			}()
		} else {
			close(done)
		}
		company, err := s.finch.Company(ctx, token)
		if err != nil {
			cancel()
		}
		<-done
		if dirPanic != nil {
			panic(dirPanic) // in the handler's goroutine, where recoverPanics answers it
		}
		if err == nil {
			err = dirErr
		}
		if company != nil {
			page.Company = newCompanyView(company)
		}
		if dir != nil && dirErr == nil {
			page.Directory = newDirectoryView(dir, offset, pageSize, s.link("/connections/"+url.PathEscape(id)+"/employees/"))
		}
		if err != nil {
			page.DataError = s.dataError(r, id, err, &page)
			if errors.Is(err, finchconnect.ErrReauthRequired) {
				page.DataError = "" // the re-authentication notice says it, once
			}
		}
		s.render(w, r, http.StatusOK, "connection", page.Conn.CustomerName, page)
	})
}

// dataError explains a failed read of employer data on the page, and
// records a connection that Finch says needs re-authentication.
func (s *Server) dataError(r *http.Request, id string, err error, page *connectionPage) string {
	switch {
	case errors.Is(err, finchconnect.ErrReauthRequired):
		page.NeedsReauth = true
		if page.Conn.Status != finchconnect.StatusReauth {
			s.markReauth(r, page.Conn)
		}
		page.Conn.Status = finchconnect.StatusReauth
		return "Finch needs the employer to re-authenticate this connection."
	case errors.Is(err, finchconnect.ErrUnauthorized):
		return "Finch refused this connection's token: it was disconnected. Connect the employer again."
	case errors.Is(err, finchconnect.ErrInsufficientScope):
		return "This connection was not granted the products needed to show this data."
	default:
		_, _, title, detail := classify(err)
		s.log.Warn("read employer data", "connection_id", id, "err", err, "request_id", requestID(r.Context()))
		return title + " " + detail
	}
}

// handleReauthenticate starts a re-authentication session for an existing
// connection: the employer signs in again and the new token replaces the
// old one under the same connection id.
func (s *Server) handleReauthenticate() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.startFlow(w, r, connect.FlowRequest{ConnectionID: r.PathValue("id")})
	})
}

// handleDisconnect revokes the connection at Finch, then deletes its token.
// Finch asks apps to disconnect rather than just forget: billing and access
// continue until they do.
//
// Disconnecting cannot be undone, so it takes a confirmation: a POST
// without confirm=yes (a stale form, a hand-made request) gets the
// confirmation page instead, as GET does.
func (s *Server) handleDisconnect() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.PostFormValue("confirm") != "yes" {
			s.confirmDisconnect(w, r)
			return
		}
		if err := s.disconnect(r.Context(), r.PathValue("id"), "browser"); err != nil {
			s.fail(w, r, false, err)
			return
		}
		http.Redirect(w, r, s.link("/?disconnected=1"), http.StatusSeeOther)
	})
}

// disconnectPage asks the operator to confirm a disconnect.
type disconnectPage struct {
	Conn            finchconnect.Connection
	Name, Provider  string
	Status          string
	ConnURL, Action string
}

// handleConfirmDisconnect is the page that asks before a disconnect.
func (s *Server) handleConfirmDisconnect() http.Handler {
	return http.HandlerFunc(s.confirmDisconnect)
}

func (s *Server) confirmDisconnect(w http.ResponseWriter, r *http.Request) {
	conn, err := s.store.Lookup(r.Context(), r.PathValue("id")) // no token opened
	if err != nil {
		s.fail(w, r, false, storeFailure(err))
		return
	}
	conn.AccessToken = finchconnect.Secret{}
	connURL := s.link("/connections/" + url.PathEscape(conn.ConnectionID))
	name := cmp.Or(conn.CustomerName, conn.CustomerID)
	s.render(w, r, http.StatusOK, "disconnect", "Disconnect "+name, disconnectPage{
		Conn: conn, Name: name, Provider: providerName(conn.ProviderID), Status: statusName(conn.Status),
		ConnURL: connURL, Action: connURL + "/disconnect",
	})
}

// applyIntrospection copies what /introspect says into a stored connection.
func applyIntrospection(c *finchconnect.Connection, in *finch.Introspection, now time.Time) {
	c.CheckedAt = now
	if st := in.ConnectionStatus.Status; st != "" {
		c.Status = st
	}
	c.StatusMessage = in.ConnectionStatus.Message
	if t := in.ConnectionStatus.LastSuccessfulSync; t != nil && !t.IsZero() {
		c.LastSyncAt = *t
	}
	if in.CustomerID != "" {
		c.CustomerID = in.CustomerID
	}
	if in.CustomerName != "" {
		c.CustomerName = in.CustomerName
	}
	if in.CustomerEmail != "" {
		c.CustomerEmail = in.CustomerEmail
	}
	if len(in.Products) > 0 {
		c.Products = in.Products
	}
}
