{{- /*
tokenmint.managerRuleSets splits the manager's rules (tokenmint.managerRules,
generated from the +kubebuilder:rbac markers) by the scope of their resources,
for rbac.namespaced, as YAML with three lists of rules:
  cluster      the cluster-scoped resources: Namespaces (listed to evaluate
               namespace selectors), ClusterTokenIssuers, ClusterAccessTokens,
               TokenReviews (metrics authentication);
  namespaced   every other resource, granted by a Role in each namespace served;
  credentials  read access to Secrets, all the manager needs in the credentials
               namespace when it serves no AccessToken there;
  events       the rules on events: events about cluster-scoped objects are
               written in the namespace "default".
A resource the manager gains later is namespaced unless listed here.
*/}}
{{- define "tokenmint.managerRuleSets" -}}
{{- $clusterScoped := list "namespaces" "tokenreviews" "subjectaccessreviews" "clustertokenissuers" "clustertokenissuers/status" "clusteraccesstokens" "clusteraccesstokens/status" "clusteraccesstokens/finalizers" }}
{{- $cluster := list }}
{{- $namespaced := list }}
{{- $credentials := list }}
{{- $events := list }}
{{- range (include "tokenmint.managerRules" . | fromYamlArray) }}
{{- $c := list }}
{{- $n := list }}
{{- range .resources }}
{{- if has . $clusterScoped }}{{ $c = append $c . }}{{ else }}{{ $n = append $n . }}{{ end }}
{{- end }}
{{- if $c }}{{ $cluster = append $cluster (dict "apiGroups" .apiGroups "resources" $c "verbs" .verbs) }}{{ end }}
{{- if $n }}{{ $namespaced = append $namespaced (dict "apiGroups" .apiGroups "resources" $n "verbs" .verbs) }}{{ end }}
{{- if and (has "" .apiGroups) (has "secrets" .resources) }}
{{- $read := list }}
{{- range .verbs }}{{ if has . (list "get" "list" "watch") }}{{ $read = append $read . }}{{ end }}{{ end }}
{{- if $read }}{{ $credentials = append $credentials (dict "apiGroups" (list "") "resources" (list "secrets") "verbs" $read) }}{{ end }}
{{- end }}
{{- if has "events" .resources }}{{ $events = append $events (dict "apiGroups" .apiGroups "resources" (list "events") "verbs" .verbs) }}{{ end }}
{{- end }}
{{- toYaml (dict "cluster" $cluster "namespaced" $namespaced "credentials" $credentials "events" $events) }}
{{- end }}

{{- /*
tokenmint.servedNamespaces lists, as YAML, the namespaces that get the
manager's namespaced Role with rbac.namespaced: the release namespace (state
Secrets, the sources of ClusterAccessTokens) and watchNamespaces.
*/}}
{{- define "tokenmint.servedNamespaces" -}}
{{- toYaml (prepend .Values.watchNamespaces (include "tokenmint.namespace" .) | uniq) }}
{{- end }}
