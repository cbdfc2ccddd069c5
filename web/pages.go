package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/service"
)

// sinceLayout is the value format of <input type="datetime-local">, read as UTC.
const sinceLayout = "2006-01-02T15:04"

// ---- tenants ----

type tenantsData struct {
	Tenants []*aviso.Tenant
	More    bool
	Next    string
	Form    service.TenantInput
	Field   string // the field an error is about
	Message string // and what is wrong with it
}

func (h *Handler) tenants(w http.ResponseWriter, r *request) {
	h.renderTenants(w, r, http.StatusOK, tenantsData{}, "")
}

func (h *Handler) renderTenants(w http.ResponseWriter, r *request, status int, d tenantsData, errMsg string) {
	page, err := h.svc.ListTenants(r.Context(), r.principal(), aviso.ListParams{After: r.URL.Query().Get("after")})
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	d.Tenants, d.More, d.Next = page.Data, page.HasMore, page.NextCursor
	v := h.page(r, "tenants_title", d)
	v.Error = errMsg
	h.render(w, status, "tenants", v)
}

func (h *Handler) createTenant(w http.ResponseWriter, r *request) {
	in := service.TenantInput{ID: strings.TrimSpace(r.PostFormValue("id")), Name: strings.TrimSpace(r.PostFormValue("name"))}
	t, err := h.svc.CreateTenant(r.Context(), r.principal(), in)
	if isUserError(err) {
		banner, field, msg := h.formError(r.Request, err, []string{"id", "name"})
		h.renderTenants(w, r, statusOf(err), tenantsData{Form: in, Field: field, Message: msg}, banner)
		return
	}
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	redirect(w, r.Request, "/ui/t/"+t.ID+"/endpoints", "tenant_created")
}

// isUserError reports whether err is something the user can fix in the form just sent.
func isUserError(err error) bool {
	switch aviso.ErrorCode(err) {
	case aviso.EINVALID, aviso.ECONFLICT, aviso.ETOOLARGE, aviso.EBADREQUEST:
		return true
	}
	return false
}

// ---- catalog ----

func (h *Handler) catalog(w http.ResponseWriter, r *request) {
	types, err := h.eventTypes(r)
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	h.render(w, http.StatusOK, "catalog", h.page(r, "catalog_title", struct{ Types []*aviso.EventType }{types}))
}

// eventTypes returns the whole catalog (it is small: one page of the largest size).
func (h *Handler) eventTypes(r *request) ([]*aviso.EventType, error) {
	page, err := h.svc.ListEventTypes(r.Context(), r.principal(), aviso.ListParams{Limit: aviso.MaxLimit})
	if err != nil {
		return nil, err
	}
	return page.Data, nil
}

// ---- endpoints ----

type endpointRow struct {
	Endpoint *aviso.Endpoint
	Stats    aviso.EndpointStats
	Rate     string
	Last     *relTime // the last attempt
	Outcome  string   // and what it got, in words
}

type endpointsData struct {
	Tenant *aviso.Tenant
	Rows   []endpointRow
	Chart  chart
}

func (h *Handler) endpoints(w http.ResponseWriter, r *request) {
	ctx, p, tenantID := r.Context(), r.principal(), r.PathValue("tenant")
	t, err := h.svc.GetTenant(ctx, p, tenantID)
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	page, err := h.svc.ListEndpoints(ctx, p, tenantID, aviso.ListParams{Limit: aviso.MaxLimit})
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	// The service has scoped the principal to this tenant above; these reads are the tenant's own.
	since, until := histogramWindow(h.now())
	stats, err := h.store.EndpointStats(ctx, t.ID, since)
	if err != nil {
		h.failErr(w, r, fmt.Errorf("endpoint stats: %w", err))
		return
	}
	buckets, err := h.store.AttemptHistogram(ctx, aviso.HistogramParams{TenantID: t.ID, Since: since,
		Until: until, Bucket: time.Hour})
	if err != nil {
		h.failErr(w, r, fmt.Errorf("attempt histogram: %w", err))
		return
	}
	d := endpointsData{Tenant: t, Chart: newChart("chart-tenant", chartWindows[0], buckets)}
	tr := h.tr(r.Request)
	for _, ep := range page.Data {
		st := stats[ep.ID]
		row := endpointRow{Endpoint: ep, Stats: st, Rate: rate(st)}
		if st.LastAttemptAt != nil {
			rt := tr.rel(h.now(), *st.LastAttemptAt)
			row.Last, row.Outcome = &rt, tr.outcome(st.LastResponseStatus, st.LastError)
		}
		d.Rows = append(d.Rows, row)
	}
	h.render(w, http.StatusOK, "endpoints", h.page(r, "endpoints_title", d))
}

// rate formats a success rate such as "97 % (34/35)", or "—" without attempts.
func rate(st aviso.EndpointStats) string {
	n := st.Succeeded + st.Failed
	if n == 0 {
		return "—"
	}
	return fmt.Sprintf("%d %% (%d/%d)", st.Succeeded*100/n, st.Succeeded, n)
}

// endpointForm is the endpoint form as typed, so it can be shown again after an error.
type endpointForm struct {
	URL, Description, Format, Headers, Timeout, Retry string
	Filter, FilterSample                              string // the payload filter, and event data to try it on
	Types                                             map[string]bool
	Verify                                            bool
	Ordered                                           bool   // ordering by external reference
	SendTraceparent                                   bool   // send the trace context to the receiver
	RateLimit                                         string // deliveries per second; "" or 0: none
}

type endpointFormData struct {
	Edit           bool
	Action, Cancel string
	Form           endpointForm
	Field          string // the field the error is about, marked on the form
	FieldError     string // what is wrong with it, in the page's language where known
	Types          []*aviso.EventType
	Formats        []aviso.Format
	FilterResult   string // the outcome of "test the filter", in words
}

func formFromEndpoint(ep *aviso.Endpoint) endpointForm {
	f := endpointForm{URL: ep.URL, Description: ep.Description, Format: string(ep.Format),
		Timeout: strconv.Itoa(ep.TimeoutSeconds), Types: map[string]bool{}, Verify: false, Filter: ep.Filter,
		Ordered: ep.Ordering == aviso.OrderingExternalReference, SendTraceparent: ep.SendTraceparent}
	if ep.RateLimit > 0 {
		f.RateLimit = strconv.Itoa(ep.RateLimit)
	}
	for _, t := range ep.EventTypes {
		f.Types[t] = true
	}
	keys := make([]string, 0, len(ep.Headers))
	for k := range ep.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, "%s: %s\n", k, ep.Headers[k])
	}
	f.Headers = sb.String()
	var rs []string
	for _, d := range ep.RetrySchedule {
		rs = append(rs, time.Duration(d).String())
	}
	f.Retry = strings.Join(rs, ", ")
	return f
}

func readEndpointForm(r *http.Request) endpointForm {
	f := endpointForm{
		URL: strings.TrimSpace(r.PostFormValue("url")), Description: strings.TrimSpace(r.PostFormValue("description")),
		Format: r.PostFormValue("format"), Headers: r.PostFormValue("headers"),
		Timeout: strings.TrimSpace(r.PostFormValue("timeout_seconds")), Retry: r.PostFormValue("retry_schedule"),
		Types: map[string]bool{}, Verify: r.PostFormValue("verify") != "",
		Filter: strings.TrimSpace(r.PostFormValue("filter")), FilterSample: r.PostFormValue("filter_sample"),
		Ordered:         r.PostFormValue("ordering") == aviso.OrderingExternalReference,
		SendTraceparent: r.PostFormValue("send_traceparent") != "",
		RateLimit:       strings.TrimSpace(r.PostFormValue("rate_limit")),
	}
	for _, t := range r.PostForm["event_types"] {
		f.Types[t] = true
	}
	return f
}

// ordering is the endpoint's ordering as the form's checkbox says.
func (f endpointForm) ordering() string {
	if f.Ordered {
		return aviso.OrderingExternalReference
	}
	return aviso.OrderingNone
}

// rateLimit reads the rate limit field: "" is none (0).
func (f endpointForm) rateLimit() (int, error) {
	if f.RateLimit == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(f.RateLimit)
	if err != nil {
		return 0, aviso.Invalid("rate_limit", "must be a whole number of deliveries per second")
	}
	return n, nil
}

// parsed turns the form into endpoint fields; EINVALID naming the field it cannot read.
func (f endpointForm) parsed() (headers map[string]string, timeout int, retry []aviso.Duration, types []string, err error) {
	headers = map[string]string{}
	for i, line := range strings.Split(f.Headers, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, 0, nil, nil, aviso.Invalid("headers", "line %d must be \"Name: value\"", i+1)
		}
		headers[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if f.Timeout != "" {
		if timeout, err = strconv.Atoi(f.Timeout); err != nil {
			return nil, 0, nil, nil, aviso.Invalid("timeout_seconds", "must be a whole number of seconds")
		}
	}
	for _, s := range strings.FieldsFunc(f.Retry, func(r rune) bool { return r == ',' || r == ' ' }) {
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, 0, nil, nil, aviso.Invalid("retry_schedule", "%q is not a duration such as 25s or 10m", s)
		}
		retry = append(retry, aviso.Duration(d))
	}
	for t := range f.Types {
		types = append(types, t)
	}
	sort.Strings(types)
	return headers, timeout, retry, types, nil
}

func (h *Handler) renderEndpointForm(w http.ResponseWriter, r *request, status int, d endpointFormData, err error) {
	types, lerr := h.eventTypes(r)
	if lerr != nil {
		h.failErr(w, r, lerr)
		return
	}
	d.Types, d.Formats = types, aviso.Formats()
	if d.Form.Types == nil {
		d.Form.Types = map[string]bool{}
	}
	title := "endpoint_new"
	if d.Edit {
		title = "endpoint_edit"
	}
	v := h.page(r, title, d)
	if err != nil {
		v.Error, d.Field, d.FieldError = h.formError(r.Request, err, endpointFormFields)
		v.D = d
	}
	h.render(w, status, "endpoint_form", v)
}

func (h *Handler) newEndpoint(w http.ResponseWriter, r *request) {
	tenantID := r.PathValue("tenant")
	if _, err := h.svc.GetTenant(r.Context(), r.principal(), tenantID); err != nil {
		h.failErr(w, r, err)
		return
	}
	base := "/ui/t/" + tenantID + "/endpoints"
	h.renderEndpointForm(w, r, http.StatusOK, endpointFormData{Action: base, Cancel: base,
		Form: endpointForm{Format: string(aviso.FormatStandard), Timeout: strconv.Itoa(aviso.DefaultTimeoutSeconds), Verify: true}}, nil)
}

func (h *Handler) createEndpoint(w http.ResponseWriter, r *request) {
	tenantID := r.PathValue("tenant")
	base := "/ui/t/" + tenantID + "/endpoints"
	f := readEndpointForm(r.Request)
	d := endpointFormData{Action: base, Cancel: base, Form: f}
	if r.PostFormValue("action") == "test_filter" {
		h.testFilter(w, r, d)
		return
	}
	headers, timeout, retry, types, err := f.parsed()
	limit := 0
	if err == nil {
		limit, err = f.rateLimit()
	}
	var ep *aviso.Endpoint
	if err == nil {
		verify := f.Verify
		ep, err = h.svc.CreateEndpoint(r.Context(), r.principal(), tenantID, service.EndpointInput{
			URL: f.URL, Description: f.Description, EventTypes: types, Format: aviso.Format(f.Format),
			Headers: headers, TimeoutSeconds: timeout, RetrySchedule: retry, Verify: &verify, Filter: f.Filter,
			Ordering: f.ordering(), SendTraceparent: f.SendTraceparent, RateLimit: &limit})
	}
	if isUserError(err) {
		h.renderEndpointForm(w, r, statusOf(err), d, err)
		return
	}
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	redirect(w, r.Request, base+"/"+ep.ID, "endpoint_created")
}

func (h *Handler) editEndpoint(w http.ResponseWriter, r *request) {
	tenantID, id := r.PathValue("tenant"), r.PathValue("endpoint")
	ep, err := h.svc.GetEndpoint(r.Context(), r.principal(), tenantID, id)
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	base := "/ui/t/" + tenantID + "/endpoints/" + id
	h.renderEndpointForm(w, r, http.StatusOK, endpointFormData{Edit: true, Action: base + "/edit", Cancel: base,
		Form: formFromEndpoint(ep)}, nil)
}

func (h *Handler) updateEndpoint(w http.ResponseWriter, r *request) {
	tenantID, id := r.PathValue("tenant"), r.PathValue("endpoint")
	base := "/ui/t/" + tenantID + "/endpoints/" + id
	f := readEndpointForm(r.Request)
	d := endpointFormData{Edit: true, Action: base + "/edit", Cancel: base, Form: f}
	if r.PostFormValue("action") == "test_filter" {
		h.testFilter(w, r, d)
		return
	}
	headers, timeout, retry, types, err := f.parsed()
	limit := 0
	if err == nil {
		limit, err = f.rateLimit()
	}
	if err == nil {
		format := aviso.Format(f.Format)
		if types == nil {
			types = []string{}
		}
		if retry == nil {
			retry = []aviso.Duration{}
		}
		verify := f.Verify
		ordering := f.ordering()
		_, err = h.svc.UpdateEndpoint(r.Context(), r.principal(), tenantID, id, service.EndpointPatch{
			URL: &f.URL, Description: &f.Description, EventTypes: &types, Format: &format,
			Headers: &headers, TimeoutSeconds: &timeout, RetrySchedule: &retry, Verify: &verify, Filter: &f.Filter,
			Ordering: &ordering, SendTraceparent: &f.SendTraceparent,
			RateLimit: json.RawMessage(strconv.Itoa(limit))})
	}
	if isUserError(err) {
		h.renderEndpointForm(w, r, statusOf(err), d, err)
		return
	}
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	redirect(w, r.Request, base, "endpoint_saved")
}

type endpointData struct {
	Endpoint    *aviso.Endpoint
	Overview    *overview
	Secret      *service.SecretInfo
	Types       []*aviso.EventType
	TestType    string
	TestData    string
	TestAttempt *aviso.Attempt
	ReplaySince string
}

// loadEndpoint gathers the endpoint page's data.
func (h *Handler) loadEndpoint(r *request) (*endpointData, error) {
	ctx, p, tenantID, id := r.Context(), r.principal(), r.PathValue("tenant"), r.PathValue("endpoint")
	ep, err := h.svc.GetEndpoint(ctx, p, tenantID, id)
	if err != nil {
		return nil, err
	}
	ov, err := h.loadOverview(ctx, h.tr(r.Request), ep, r.URL.Query().Get("range"))
	if err != nil {
		return nil, err
	}
	all, err := h.eventTypes(r)
	if err != nil {
		return nil, err
	}
	d := &endpointData{Endpoint: ep, Overview: ov,
		ReplaySince: h.now().Add(-24 * time.Hour).Format(sinceLayout)}
	for _, t := range all {
		if ep.Subscribes(t.Name) {
			d.Types = append(d.Types, t)
		}
	}
	if len(d.Types) > 0 {
		d.TestType = d.Types[0].Name
		d.TestData = prettyJSON(d.Types[0].Example)
	}
	if r.URL.Query().Get("reveal") != "" {
		if d.Secret, err = h.svc.GetSecret(ctx, p, tenantID, id); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (h *Handler) endpoint(w http.ResponseWriter, r *request) {
	d, err := h.loadEndpoint(r)
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	h.render(w, http.StatusOK, "endpoint", h.endpointPage(r, d))
}

// endpointPage is the endpoint page's view, titled by the endpoint's description or URL.
func (h *Handler) endpointPage(r *request, d *endpointData) *view {
	v := h.page(r, "endpoint", d)
	v.Title = endpointName(d.Endpoint)
	return v
}

// endpointName is how pages name an endpoint: its description, else its URL.
func endpointName(ep *aviso.Endpoint) string {
	if ep.Description != "" {
		return ep.Description
	}
	return ep.URL
}

func (h *Handler) setDisabled(disabled bool) func(http.ResponseWriter, *request) {
	return func(w http.ResponseWriter, r *request) {
		tenantID, id := r.PathValue("tenant"), r.PathValue("endpoint")
		_, err := h.svc.UpdateEndpoint(r.Context(), r.principal(), tenantID, id, service.EndpointPatch{Disabled: &disabled})
		if err != nil {
			h.failErr(w, r, err)
			return
		}
		flash := "endpoint_enabled"
		if disabled {
			flash = "endpoint_disabled"
		}
		redirect(w, r.Request, "/ui/t/"+tenantID+"/endpoints/"+id, flash)
	}
}

// sendTest sends one test event synchronously and shows the attempt on the endpoint page.
func (h *Handler) sendTest(w http.ResponseWriter, r *request) {
	d, err := h.loadEndpoint(r)
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	d.TestType, d.TestData = r.PostFormValue("type"), r.PostFormValue("data")
	in := service.TestInput{Type: d.TestType}
	if strings.TrimSpace(d.TestData) != "" {
		if !json.Valid([]byte(d.TestData)) {
			err = aviso.Invalid("data", "is not valid JSON")
		}
		in.Data = json.RawMessage(d.TestData)
	}
	if err == nil {
		d.TestAttempt, err = h.svc.SendTest(r.Context(), r.principal(), d.Endpoint.TenantID, d.Endpoint.ID, in)
	}
	v := h.endpointPage(r, d)
	status := http.StatusOK
	if isUserError(err) {
		status, v.Error = statusOf(err), errorText(err)
	} else if err != nil {
		h.failErr(w, r, err)
		return
	}
	h.render(w, status, "endpoint", v)
}

// ---- helpers ----

// fmtTime formats a time (or *time.Time) for the pages, in UTC.
func fmtTime(v any) string {
	switch t := v.(type) {
	case time.Time:
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	case *time.Time:
		if t == nil {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	return ""
}

// prettyJSON indents JSON for display; other text is returned as it is. html/template escapes it.
func prettyJSON(raw []byte) string {
	var buf bytes.Buffer
	if json.Indent(&buf, raw, "", "  ") != nil {
		return string(raw)
	}
	return buf.String()
}

// testFilter answers the form's "test the filter" button: the filter is run on the sample event
// data (JSON; the first chosen event type's), as a publish would run it, and the form comes back
// as it was, with the outcome. Nothing is saved.
func (h *Handler) testFilter(w http.ResponseWriter, r *request, d endpointFormData) {
	typ := "invoice.created"
	for t := range d.Form.Types {
		if typ == "invoice.created" || t < typ {
			typ = t
		}
	}
	data := strings.TrimSpace(d.Form.FilterSample)
	if data == "" {
		data = "{}"
	}
	res, err := h.svc.TryFilter(d.Form.Filter, &aviso.Event{ID: "evt_filter_test", TenantID: r.PathValue("tenant"),
		Type: typ, Data: json.RawMessage(data), CreatedAt: h.now()})
	if err != nil {
		h.renderEndpointForm(w, r, statusOf(err), d, err)
		return
	}
	tr := h.tr(r.Request)
	switch {
	case res.Error != "":
		d.FilterResult = tr.T("filter_error") + " " + res.Error
	case res.Match:
		d.FilterResult = tr.T("filter_matches")
	default:
		d.FilterResult = tr.T("filter_no_match")
	}
	h.renderEndpointForm(w, r, http.StatusOK, d, nil)
}
