/*
Copyright 2026 The tokenmint Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/secret"
)

// maxEvents is how many of an AccessToken's most recent events status shows.
const maxEvents = 10

// StatusView is what status shows of one AccessToken.
type StatusView struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Issuer    string `json:"issuer"`
	// IssuerStatus is the issuer's Ready condition ("True Valid", "False
	// CredentialSecretMissing: ..."), or why it is not known.
	IssuerStatus string `json:"issuerStatus"`
	// IssuerClockSkew is the issuer's ClockSkew condition while its
	// endpoint's clock is off ("ClockAhead: ..."); empty otherwise.
	IssuerClockSkew string `json:"issuerClockSkew,omitempty"`
	// Ready is computed here, not copied: "True" only when the manager says
	// Ready and the token status names has not expired at the time of the
	// view; a manager that is late, stopped or behind cannot make it claim
	// an expired token is valid.
	Ready string `json:"ready"`
	// ReadyReason is why Ready is what it is: the manager's reason, or
	// TokenExpired when status says Ready for a token that has expired.
	ReadyReason string `json:"readyReason"`
	// Conditions are Ready, Renewing and RotationVisible, as the manager set them.
	Conditions  []ConditionView `json:"conditions"`
	IssuedAt    *Moment         `json:"issuedAt,omitempty"`
	ExpiresAt   *Moment         `json:"expiresAt,omitempty"`
	RenewalTime *Moment         `json:"renewalTime,omitempty"`
	// ReissueAfter is when a re-issue that the issuer's reissueWindow
	// spreads is due (status.reissueAfter).
	ReissueAfter *Moment `json:"reissueAfter,omitempty"`
	// ExpiryUnknown is the ExpiryUnknown condition's message while it is
	// True: the token has no known expiry and is never renewed on time.
	ExpiryUnknown  string  `json:"expiryUnknown,omitempty"`
	FailedAttempts int32   `json:"failedAttempts"`
	LastFailure    *Moment `json:"lastFailure,omitempty"`
	// LastError is the Renewing condition's message while it is False.
	LastError string `json:"lastError,omitempty"`
	// RenewalRequested is the value of the renew annotation not yet acted on.
	RenewalRequested string `json:"renewalRequested,omitempty"`
	TokenFingerprint string `json:"tokenFingerprint,omitempty"`
	// History is status.history: the recent tokens, newest first.
	History []HistoryView `json:"history,omitempty"`
	Secret  *SecretView   `json:"secret"`
	// NeedsRestart are the workloads the RotationVisible condition names as
	// reading the Secret once (environment variables, subPath mounts).
	NeedsRestart   []string    `json:"needsRestart,omitempty"`
	RestartTargets []string    `json:"restartTargets,omitempty"`
	Events         []EventView `json:"events"`
	// EventsError says why events could not be listed.
	EventsError string `json:"eventsError,omitempty"`
}

// HistoryView is one recent token, by fingerprint: never the token.
type HistoryView struct {
	Fingerprint string  `json:"fingerprint"`
	Issuer      string  `json:"issuer"`
	IssuedAt    *Moment `json:"issuedAt,omitempty"`
	ExpiresAt   *Moment `json:"expiresAt,omitempty"`
	ReplacedAt  *Moment `json:"replacedAt,omitempty"`
	RevokedAt   *Moment `json:"revokedAt,omitempty"`
}

// historyViews shows status.history at now.
func historyViews(st *tokensv1alpha1.AccessTokenStatus, now time.Time) []HistoryView {
	var out []HistoryView
	for _, h := range st.History {
		kind := h.Issuer.Kind
		if kind == "" {
			kind = tokensv1alpha1.TokenIssuerKind
		}
		issued := h.IssuedAt
		out = append(out, HistoryView{Fingerprint: h.Fingerprint, Issuer: string(kind) + "/" + h.Issuer.Name,
			IssuedAt: momentOf(&issued, now), ExpiresAt: momentOf(h.ExpiresAt, now),
			ReplacedAt: momentOf(h.ReplacedAt, now), RevokedAt: momentOf(h.RevokedAt, now)})
	}
	return out
}

// printHistory writes the recent tokens as a table.
func printHistory(out io.Writer, history []HistoryView) {
	if len(history) == 0 {
		return
	}
	fmt.Fprintln(out, "  Recent tokens (newest first):")
	rel := func(m *Moment) string {
		if m == nil {
			return "-"
		}
		return m.Relative
	}
	ht := newTable(out, "    ", "FINGERPRINT", "ISSUER", "ISSUED", "EXPIRES", "REPLACED", "REVOKED")
	for _, h := range history {
		ht.row("    ", h.Fingerprint, h.Issuer, rel(h.IssuedAt), rel(h.ExpiresAt), rel(h.ReplacedAt), rel(h.RevokedAt))
	}
	ht.flush()
}

// ConditionView is one condition.
type ConditionView struct {
	Type    string  `json:"type"`
	Status  string  `json:"status"`
	Reason  string  `json:"reason"`
	Message string  `json:"message,omitempty"`
	Since   *Moment `json:"since,omitempty"`
}

// SecretView is what is shown of a token Secret: never a value.
type SecretView struct {
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	TokenKey  string    `json:"tokenKey"`
	Exists    bool      `json:"exists"`
	Error     string    `json:"error,omitempty"`
	OwnedBy   string    `json:"ownedBy,omitempty"`
	Type      string    `json:"type,omitempty"`
	Keys      []KeyView `json:"keys,omitempty"`
	// Fingerprint is the token-fingerprint annotation, and FingerprintMatches
	// whether it is the fingerprint the AccessToken's status holds.
	Fingerprint        string  `json:"fingerprint,omitempty"`
	FingerprintMatches *bool   `json:"fingerprintMatches,omitempty"`
	IssuedAt           *Moment `json:"issuedAt,omitempty"`
	ExpiresAt          *Moment `json:"expiresAt,omitempty"`
	// Token describes the token key's value without showing it.
	Token *TokenView `json:"token,omitempty"`
}

// KeyView is one key of a Secret and the size of its value.
type KeyView struct {
	Key   string `json:"key"`
	Bytes int    `json:"bytes"`
}

// EventView is one event.
type EventView struct {
	Type     string  `json:"type"`
	Reason   string  `json:"reason"`
	Message  string  `json:"message"`
	Count    int32   `json:"count"`
	LastSeen *Moment `json:"lastSeen,omitempty"`
}

type statusOptions struct {
	*Options
	all           bool
	allNamespaces bool
	output        string
	cluster       bool
}

func newStatusCommand(o *Options) *cobra.Command {
	s := &statusOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "status [NAME | --all | -A] [--cluster]",
		Short: "Show how AccessTokens are doing: conditions, times, failures, events, their Secret's keys",
		Example: `  kubectl tokenmint status cable-transactions -n billing
  kubectl tokenmint status --all -n billing
  kubectl tokenmint status -A -o yaml
  kubectl tokenmint status clusteraccesstoken/shared-registry
  kubectl tokenmint status --cluster --all`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := outputFormat(s.output); err != nil {
				return err
			}
			return s.run(cmd.Context(), args)
		},
	}
	cmd.Flags().BoolVar(&s.all, "all", false, "every AccessToken of the namespace")
	cmd.Flags().BoolVarP(&s.allNamespaces, "all-namespaces", "A", false, "every AccessToken of every namespace")
	cmd.Flags().StringVarP(&s.output, "output", "o", "", "json or yaml; a readable report when left out")
	cmd.Flags().BoolVar(&s.cluster, "cluster", false,
		"NAME (or --all) names ClusterAccessTokens: their token and namespaces selected, written and failing")
	return cmd
}

func (s *statusOptions) run(ctx context.Context, args []string) error {
	if len(args) == 1 && (s.all || s.allNamespaces) {
		return errors.New("give a NAME or --all/-A, not both")
	}
	if args, cluster := clusterArg(args, s.cluster); cluster {
		return s.statusCluster(ctx, args)
	}
	c, err := s.Client()
	if err != nil {
		return err
	}
	ns, err := s.Namespace()
	if err != nil {
		return err
	}
	var opts []client.ListOption
	if !s.allNamespaces {
		opts = append(opts, client.InNamespace(ns))
	}
	items, err := accessTokens(ctx, c, ns, args, opts...)
	if err != nil {
		return err
	}
	sort.Slice(items, func(i, j int) bool {
		if items[i].Namespace != items[j].Namespace {
			return items[i].Namespace < items[j].Namespace
		}
		return items[i].Name < items[j].Name
	})
	now := s.now()
	views := make([]StatusView, 0, len(items))
	for i := range items {
		views = append(views, buildStatus(ctx, c, &items[i], now))
	}
	switch {
	case s.output != "" && len(args) == 1:
		return printStructured(s.Out, s.output, views[0])
	case s.output != "":
		return printStructured(s.Out, s.output, views)
	}
	if len(views) == 0 {
		where := "namespace " + ns
		if s.allNamespaces {
			where = "any namespace"
		}
		fmt.Fprintf(s.Out, "No AccessTokens in %s.\n", where)
		return nil
	}
	for i := range views {
		if i > 0 {
			fmt.Fprintln(s.Out)
		}
		printStatus(s.Out, &views[i])
	}
	return nil
}

// buildStatus gathers what status shows of at: its status, its Secret's keys
// and its events. What cannot be read is reported in the view, never fatal.
func buildStatus(ctx context.Context, c client.Client, at *tokensv1alpha1.AccessToken, now time.Time) StatusView {
	kind := at.Spec.IssuerRef.Kind
	if kind == "" {
		kind = tokensv1alpha1.TokenIssuerKind
	}
	st := &at.Status
	v := StatusView{
		Namespace:        at.Namespace,
		Name:             at.Name,
		Issuer:           string(kind) + "/" + at.Spec.IssuerRef.Name,
		IssuedAt:         momentOf(st.IssuedAt, now),
		ExpiresAt:        momentOf(st.ExpiresAt, now),
		RenewalTime:      momentOf(st.RenewalTime, now),
		ReissueAfter:     momentOf(st.ReissueAfter, now),
		FailedAttempts:   st.FailedAttempts,
		LastFailure:      momentOf(st.LastFailureTime, now),
		TokenFingerprint: st.TokenFingerprint,
		History:          historyViews(st, now),
		Conditions:       []ConditionView{},
		Events:           []EventView{},
	}
	v.IssuerStatus, v.IssuerClockSkew = issuerStatus(ctx, c, at, kind)
	v.Ready, v.ReadyReason = readyAt(st, now)
	if eu := meta.FindStatusCondition(st.Conditions, tokensv1alpha1.ConditionExpiryUnknown); eu != nil && eu.Status == metav1.ConditionTrue {
		v.ExpiryUnknown = eu.Message
	}
	for _, cond := range st.Conditions {
		t := cond.LastTransitionTime.Time
		v.Conditions = append(v.Conditions, ConditionView{Type: cond.Type, Status: string(cond.Status),
			Reason: cond.Reason, Message: cond.Message, Since: moment(&t, now)})
	}
	if r := meta.FindStatusCondition(st.Conditions, tokensv1alpha1.ConditionRenewing); r != nil && r.Status == metav1.ConditionFalse {
		v.LastError = r.Reason + ": " + r.Message
	}
	if req := at.Annotations[tokensv1alpha1.AnnotationRenew]; req != "" && req != st.LastRenewalRequest {
		v.RenewalRequested = req
	}
	if rv := meta.FindStatusCondition(st.Conditions, tokensv1alpha1.ConditionRotationVisible); rv != nil &&
		rv.Status == metav1.ConditionFalse && rv.Reason == tokensv1alpha1.ReasonConsumersStale {
		v.NeedsRestart = staleWorkloads(rv.Message)
	}
	for _, t := range at.Spec.RestartTargets {
		v.RestartTargets = append(v.RestartTargets, string(t.Kind)+"/"+t.Name)
	}
	v.Secret = tokenSecret(ctx, c, at, now)
	v.Events, v.EventsError = recentEvents(ctx, c, at, now)
	return v
}

// ReasonTokenExpired is the Ready reason the plugin shows when the manager's
// status says Ready but the token it names has expired.
const ReasonTokenExpired = "TokenExpired"

// readyAt says whether the AccessToken's token is usable at now: the manager's
// Ready condition, overruled when the expiry status records has passed (the
// manager may be down, or behind, and its last word cannot be taken then).
func readyAt(st *tokensv1alpha1.AccessTokenStatus, now time.Time) (status, reason string) {
	ready := meta.FindStatusCondition(st.Conditions, tokensv1alpha1.ConditionReady)
	if ready == nil {
		return string(metav1.ConditionUnknown), "NotReconciled"
	}
	if st.ExpiresAt != nil && !now.Before(st.ExpiresAt.Time) {
		return string(metav1.ConditionFalse), ReasonTokenExpired
	}
	return string(ready.Status), ready.Reason
}

// issuerStatus reads the Ready condition of the AccessToken's issuer, and its
// ClockSkew condition while the endpoint's clock is off (empty otherwise).
func issuerStatus(ctx context.Context, c client.Client, at *tokensv1alpha1.AccessToken, kind tokensv1alpha1.IssuerKind) (ready, clockSkew string) {
	var conditions []metav1.Condition
	if kind == tokensv1alpha1.ClusterTokenIssuerKind {
		cti := &tokensv1alpha1.ClusterTokenIssuer{}
		if err := c.Get(ctx, types.NamespacedName{Name: at.Spec.IssuerRef.Name}, cti); err != nil {
			return reasonOf(err), ""
		}
		conditions = cti.Status.Conditions
	} else {
		ti := &tokensv1alpha1.TokenIssuer{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: at.Namespace, Name: at.Spec.IssuerRef.Name}, ti); err != nil {
			return reasonOf(err), ""
		}
		conditions = ti.Status.Conditions
	}
	if skew := meta.FindStatusCondition(conditions, tokensv1alpha1.ConditionClockSkew); skew != nil && skew.Status == metav1.ConditionTrue {
		clockSkew = skew.Reason + ": " + skew.Message
	}
	r := meta.FindStatusCondition(conditions, tokensv1alpha1.ConditionReady)
	switch {
	case r == nil:
		return "not looked at by the manager yet", clockSkew
	case r.Status == metav1.ConditionTrue:
		return "Ready " + string(r.Status) + " " + r.Reason, clockSkew
	}
	return "Ready " + string(r.Status) + " " + r.Reason + ": " + r.Message, clockSkew
}

func momentOf(t *metav1.Time, now time.Time) *Moment {
	if t == nil {
		return nil
	}
	return moment(&t.Time, now)
}

// staleWorkload matches one workload of the RotationVisible message, as the
// manager writes it: "Deployment/billing (env, subPath)".
var staleWorkload = regexp.MustCompile(`([A-Za-z]+/[^\s,()]+) \(([^)]*)\)`)

// staleWorkloads reads the workloads named by a ConsumersNeedRestart message.
func staleWorkloads(message string) []string {
	head, _, _ := strings.Cut(message, " read Secret ")
	var out []string
	for _, m := range staleWorkload.FindAllStringSubmatch(head, -1) {
		out = append(out, m[1]+" ("+m[2]+")")
	}
	return out
}

// tokenSecret describes the AccessToken's Secret without any value.
func tokenSecret(ctx context.Context, c client.Client, at *tokensv1alpha1.AccessToken, now time.Time) *SecretView {
	v := &SecretView{Namespace: at.Namespace, Name: at.Spec.Secret.Name, TokenKey: secret.Key(at)}
	s := &corev1.Secret{}
	err := c.Get(ctx, types.NamespacedName{Namespace: at.Namespace, Name: at.Spec.Secret.Name}, s)
	switch {
	case apierrors.IsNotFound(err):
		return v
	case err != nil:
		v.Error = "cannot read it: " + reasonOf(err)
		return v
	}
	describeSecret(v, s, now)
	if !secret.IsOwnedBy(s, at) {
		v.Error = "not owned by this AccessToken: tokenmint will not write it"
	}
	if v.Fingerprint != "" && at.Status.TokenFingerprint != "" {
		matches := v.Fingerprint == at.Status.TokenFingerprint
		v.FingerprintMatches = &matches
	}
	return v
}

// describeSecret fills v from s: keys and sizes, owner, the record
// annotations, and what the token key holds. Values are never copied.
func describeSecret(v *SecretView, s *corev1.Secret, now time.Time) {
	v.Exists = true
	v.Type = string(s.Type)
	if ref := metav1.GetControllerOf(s); ref != nil {
		v.OwnedBy = ref.Kind + "/" + ref.Name
	}
	keys := make([]string, 0, len(s.Data))
	for k := range s.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v.Keys = append(v.Keys, KeyView{Key: k, Bytes: len(s.Data[k])})
	}
	v.Fingerprint = s.Annotations[secret.AnnotationFingerprint]
	if t, err := time.Parse(time.RFC3339, s.Annotations[secret.AnnotationIssuedAt]); err == nil {
		v.IssuedAt = moment(&t, now)
	}
	if t, err := time.Parse(time.RFC3339, s.Annotations[secret.AnnotationExpiresAt]); err == nil {
		v.ExpiresAt = moment(&t, now)
	}
	if token, ok := s.Data[v.TokenKey]; ok {
		v.Token = describeToken(string(token), now)
	}
}

// reasonOf is a short reason for an API error: "forbidden", "not found", or
// the error's text.
func reasonOf(err error) string {
	switch {
	case apierrors.IsForbidden(err):
		return "forbidden (" + err.Error() + ")"
	case apierrors.IsNotFound(err):
		return "not found"
	}
	return err.Error()
}

// recentEvents lists the AccessToken's most recent events, newest first.
func recentEvents(ctx context.Context, c client.Client, at *tokensv1alpha1.AccessToken, now time.Time) ([]EventView, string) {
	list := &corev1.EventList{}
	err := c.List(ctx, list, client.InNamespace(at.Namespace),
		client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("involvedObject.uid", string(at.UID))})
	if err != nil {
		return []EventView{}, "cannot list events: " + reasonOf(err)
	}
	type seen struct {
		view EventView
		at   time.Time
	}
	var events []seen
	for i := range list.Items {
		e := &list.Items[i]
		last, count := eventLastSeen(e), e.Count
		if e.Series != nil {
			count = e.Series.Count
		}
		count = max(count, 1)
		events = append(events, seen{EventView{Type: e.Type, Reason: e.Reason, Message: e.Message, Count: count,
			LastSeen: moment(&last, now)}, last})
	}
	sort.SliceStable(events, func(i, j int) bool { return events[i].at.After(events[j].at) })
	out := []EventView{}
	for i := range events {
		if i == maxEvents {
			break
		}
		out = append(out, events[i].view)
	}
	return out, ""
}

// eventLastSeen is when an event last happened, whichever API wrote it.
func eventLastSeen(e *corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

func printStatus(out io.Writer, v *StatusView) {
	fmt.Fprintf(out, "AccessToken %s/%s\n", v.Namespace, v.Name)
	t := newTable(out, "")
	ready := v.Ready + " " + v.ReadyReason
	if v.ReadyReason == ReasonTokenExpired {
		ready += " (the token status names has expired and the manager has not renewed it: is it running?)"
	}
	t.row("  ", "Ready:", ready)
	t.row("  ", "Issuer:", v.Issuer+" ("+v.IssuerStatus+")")
	if v.IssuerClockSkew != "" {
		t.row("  ", "Issuer clock:", v.IssuerClockSkew)
	}
	t.row("  ", "Issued:", v.IssuedAt.String())
	if v.ExpiryUnknown != "" {
		t.row("  ", "Expires:", "unknown: "+v.ExpiryUnknown)
	} else {
		t.row("  ", "Expires:", v.ExpiresAt.String())
	}
	t.row("  ", "Next renewal:", v.RenewalTime.String())
	if v.ReissueAfter != nil {
		t.row("  ", "Re-issue after:", v.ReissueAfter.String()+" (the issuer or a credential changed; spread by its reissueWindow)")
	}
	t.row("  ", "Failed attempts:", fmt.Sprint(v.FailedAttempts))
	t.row("  ", "Last failure:", v.LastFailure.String())
	t.row("  ", "Last error:", orDash(v.LastError))
	if v.RenewalRequested != "" {
		t.row("  ", "Renewal requested:", v.RenewalRequested+" (not acted on yet)")
	}
	t.row("  ", "Fingerprint:", orDash(v.TokenFingerprint))
	t.flush()

	printConditions(out, v.Conditions)
	printHistory(out, v.History)

	printSecretSummary(out, v.Secret)

	if len(v.NeedsRestart) > 0 {
		fmt.Fprintln(out, "  Need a restart to see a new token (they read the Secret once, at start):")
		for _, w := range v.NeedsRestart {
			fmt.Fprintln(out, "    "+oneLine(w))
		}
		fmt.Fprintln(out, "    add them to spec.restartTargets, or mount the Secret as a volume without subPath")
	}
	if len(v.RestartTargets) > 0 {
		fmt.Fprintf(out, "  Restart targets: %s\n", strings.Join(v.RestartTargets, ", "))
	}

	fmt.Fprintln(out, "  Events:")
	switch {
	case v.EventsError != "":
		fmt.Fprintln(out, "    "+oneLine(v.EventsError))
	case len(v.Events) == 0:
		fmt.Fprintln(out, "    none")
	default:
		et := newTable(out, "    ", "LAST SEEN", "TYPE", "REASON", "COUNT", "MESSAGE")
		for _, e := range v.Events {
			last := "-"
			if e.LastSeen != nil {
				last = e.LastSeen.Relative
			}
			et.row("    ", last, e.Type, e.Reason, fmt.Sprint(e.Count), e.Message)
		}
		et.flush()
	}
}

// printConditions writes conditions as a table, or says there are none yet.
func printConditions(out io.Writer, conditions []ConditionView) {
	fmt.Fprintln(out, "  Conditions:")
	if len(conditions) == 0 {
		fmt.Fprintln(out, "    none yet: the manager has not looked at it")
		return
	}
	ct := newTable(out, "    ", "TYPE", "STATUS", "REASON", "SINCE", "MESSAGE")
	for _, c := range conditions {
		since := "-"
		if c.Since != nil {
			since = c.Since.Relative
		}
		ct.row("    ", c.Type, c.Status, c.Reason, since, c.Message)
	}
	ct.flush()
}

func printSecretSummary(out io.Writer, s *SecretView) {
	fmt.Fprintf(out, "  Secret %s (token key %q):\n", s.Name, s.TokenKey)
	if s.Error != "" {
		fmt.Fprintln(out, "    "+oneLine(s.Error))
	}
	if !s.Exists {
		if s.Error == "" {
			fmt.Fprintln(out, "    does not exist")
		}
		return
	}
	kt := newTable(out, "    ", "KEY", "SIZE")
	for _, k := range s.Keys {
		kt.row("    ", k.Key, byteCount(k.Bytes))
	}
	kt.flush()
	if s.Token != nil {
		fmt.Fprintf(out, "    token: %s\n", s.Token)
	}
	fp := orDash(s.Fingerprint)
	if s.FingerprintMatches != nil {
		if *s.FingerprintMatches {
			fp += " (matches status)"
		} else {
			fp += " (differs from status: the Secret holds another token)"
		}
	}
	fmt.Fprintf(out, "    fingerprint annotation: %s\n", fp)
}
