package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
)

// prepareCodes builds n callbacks with unique codes and no state, for the
// peer and the floor, which check no state.
func prepareCodes(target, tag string, n int) []request {
	out := make([]request, n)
	for i := range out {
		out[i] = request{URL: fmt.Sprintf("%s/callback?code=code-%s-%d", target, tag, i)}
	}
	return out
}

// prepareReads builds n reads of path (with "{id}" replaced by each of ids
// in turn, so that the reads spread over many stored connections).
func prepareReads(target, path string, ids []string, auth string, n int) []request {
	out := make([]request, n)
	for i := range out {
		p := path
		if len(ids) > 0 {
			p = strings.ReplaceAll(path, "{id}", url.PathEscape(ids[i%len(ids)]))
		}
		out[i] = request{URL: target + p, Auth: auth}
	}
	return out
}

// prepareBrowserFlows drives finchconnect's POST /connect n times, as
// `browsers` simulated browsers (each flow reuses its browser's fc_browser
// cookie), and returns a callback for each flow: a unique code, the flow's
// state and the browser's cookie. Only the state's round trip through
// Connect is skipped: the upstream stand-in accepts any code.
func prepareBrowserFlows(ctx context.Context, client *http.Client, target, tag string, n, browsers int) ([]request, error) {
	browsers = max(1, min(browsers, n))
	cookies := make([]string, browsers)
	start := func(i int, cookie string) (state, setCookie string, err error) {
		form := url.Values{
			"customer_id":   {fmt.Sprintf("bench-%d", i%browsers)},
			"customer_name": {"Bench Employer"},
			"products":      {"company", "directory"},
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target+"/connect", strings.NewReader(form.Encode()))
		if err != nil {
			return "", "", err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		res, err := client.Do(req)
		if err != nil {
			return "", "", err
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		if res.StatusCode != http.StatusSeeOther {
			return "", "", fmt.Errorf("POST /connect: status %d: %.200s", res.StatusCode, body)
		}
		loc, err := url.Parse(res.Header.Get("Location"))
		if err != nil {
			return "", "", fmt.Errorf("POST /connect: bad Location: %v", err)
		}
		state = loc.Query().Get("state")
		if state == "" {
			return "", "", errors.New("POST /connect: no state in the Location")
		}
		for _, c := range res.Cookies() {
			if strings.HasSuffix(c.Name, "fc_browser") {
				setCookie = c.Name + "=" + c.Value
			}
		}
		return state, setCookie, nil
	}
	out := make([]request, n)
	callback := func(i int, state, cookie string) request {
		return request{URL: fmt.Sprintf("%s/callback?code=code-%s-%d&state=%s", target, tag, i, url.QueryEscape(state)), Cookie: cookie}
	}
	// Each browser's first flow gets it its cookie.
	err := parallel(browsers, 16, func(i int) error {
		state, cookie, err := start(i, "")
		if err != nil {
			return err
		}
		if cookie == "" {
			return errors.New("POST /connect set no fc_browser cookie")
		}
		cookies[i] = cookie
		out[i] = callback(i, state, cookie)
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = parallel(n-browsers, 16, func(j int) error {
		i := browsers + j
		cookie := cookies[i%browsers]
		state, _, err := start(i, cookie)
		if err != nil {
			return err
		}
		out[i] = callback(i, state, cookie)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// prepareAppFlows starts n flows through finchconnect's API (POST
// /v1/connect/sessions with a write key), the way an app's back-end does;
// their states are bound to no browser.
func prepareAppFlows(ctx context.Context, client *http.Client, target, apiKey, tag string, n int) ([]request, error) {
	out := make([]request, n)
	err := parallel(n, 16, func(i int) error {
		body := `{"customer_id":"bench","customer_name":"Bench Employer","products":["company","directory"]}`
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target+"/v1/connect/sessions", strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+apiKey)
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		var flow struct{ State string }
		if err := json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&flow); err != nil || flow.State == "" {
			return fmt.Errorf("POST /v1/connect/sessions: status %d, no state", res.StatusCode)
		}
		out[i] = request{URL: fmt.Sprintf("%s/callback?code=code-%s-%d&state=%s", target, tag, i, url.QueryEscape(flow.State))}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// parallel calls fn(0)…fn(n-1) from `workers` goroutines and returns the
// first error, after which the remaining calls are skipped.
func parallel(n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range max(1, min(workers, n)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					next.Store(int64(n)) // stop handing out work
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}
