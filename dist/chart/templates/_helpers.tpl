{{/*
The chart name, or nameOverride.
*/}}
{{- define "tokenmint.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every resource name: fullnameOverride; else the release name when it
already contains the chart name (release "tokenmint" gives "tokenmint"); else
"<release>-<chart>". Truncated to 63 characters, the limit of a DNS label.
*/}}
{{- define "tokenmint.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
"<chart>-<version>", for the helm.sh/chart label.
*/}}
{{- define "tokenmint.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every resource: the chart's, then commonLabels (the schema keeps them
off the chart's own app.kubernetes.io/ and helm.sh/ keys).
*/}}
{{- define "tokenmint.labels" -}}
helm.sh/chart: {{ include "tokenmint.chart" . }}
{{ include "tokenmint.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The namespace of every namespaced resource: namespaceOverride, else the release's.
*/}}
{{- define "tokenmint.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride }}
{{- end }}

{{/*
Labels that select the manager's pods. They must never change between upgrades,
because a Deployment's selector is immutable.
*/}}
{{- define "tokenmint.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tokenmint.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The manager's ServiceAccount: serviceAccount.name, else the full name.
*/}}
{{- define "tokenmint.serviceAccountName" -}}
{{- default (include "tokenmint.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{/*
Names of the roles. ClusterRoles are cluster-scoped, so they carry the full name
to keep two releases apart.
*/}}
{{- define "tokenmint.managerRoleName" -}}
{{- printf "%s-manager-role" (include "tokenmint.fullname" .) }}
{{- end }}

{{- define "tokenmint.leaderElectionRoleName" -}}
{{- printf "%s-leader-election-role" (include "tokenmint.fullname" .) }}
{{- end }}

{{- define "tokenmint.metricsAuthRoleName" -}}
{{- printf "%s-metrics-auth-role" (include "tokenmint.fullname" .) }}
{{- end }}

{{- define "tokenmint.metricsReaderRoleName" -}}
{{- printf "%s-metrics-reader" (include "tokenmint.fullname" .) }}
{{- end }}

{{/*
The namespace ClusterTokenIssuers read credential Secrets from:
credentialsNamespace, else tokenmint-credentials; never the release namespace.
*/}}
{{- define "tokenmint.credentialsNamespace" -}}
{{- $ns := default "tokenmint-credentials" .Values.credentialsNamespace }}
{{- if eq $ns (include "tokenmint.namespace" .) }}
{{- fail "credentialsNamespace must differ from the release namespace, which holds tokenmint's state Secrets and fingerprint key" }}
{{- end }}
{{- $ns }}
{{- end }}

{{/*
The image reference: [registry/]repository, then @digest when a digest is set,
else :tag, the tag defaulting to the chart's appVersion (what `make image` names).
*/}}
{{- define "tokenmint.image" -}}
{{- $repo := .Values.image.repository }}
{{- with .Values.image.registry }}
{{- $repo = printf "%s/%s" (trimSuffix "/" .) $repo }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
A security context from values (passed as "context"), without the fields that
pin a user or group when openshift is true, so that OpenShift's restricted SCC
assigns them. Fields set to null in the values are already gone.
*/}}
{{- define "tokenmint.securityContext" -}}
{{- $sc := deepCopy (.context | default dict) }}
{{- if .root.Values.openshift }}
{{- $_ := unset $sc "runAsUser" }}
{{- $_ := unset $sc "runAsGroup" }}
{{- $_ := unset $sc "fsGroup" }}
{{- end }}
{{- toYaml $sc }}
{{- end }}

{{/*
Whether the PodDisruptionBudget is rendered: podDisruptionBudget.enabled when it
is set, else only with more than one replica (a budget of one available pod out of
one would block every node drain).
*/}}
{{- define "tokenmint.pdbEnabled" -}}
{{- $enabled := .Values.podDisruptionBudget.enabled }}
{{- if kindIs "bool" $enabled }}
{{- ternary "true" "" $enabled }}
{{- else if gt (int .Values.replicaCount) 1 }}
{{- "true" }}
{{- end }}
{{- end }}

{{/*
The URL scheme of the metrics endpoint.
*/}}
{{- define "tokenmint.metricsScheme" -}}
{{- ternary "https" "http" .Values.metrics.secure }}
{{- end }}
