{{/* Names and labels shared by every template. */}}

{{- define "pangea-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pangea-operator.fullname" -}}
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

{{- define "pangea-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pangea-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "pangea-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "pangea-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "pangea-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pangea-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "pangea-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "pangea-operator.executorImage" -}}
{{- printf "%s:%s" .Values.executor.image.repository (default (printf "%s-full" .Chart.AppVersion) .Values.executor.image.tag) }}
{{- end }}

{{/* Namespaces executor Jobs run in, as a list. */}}
{{- define "pangea-operator.executorNamespaces" -}}
{{- $ns := .Values.executor.namespaces }}
{{- if not $ns }}{{ $ns = .Values.watchNamespaces }}{{ end }}
{{- if not $ns }}{{ $ns = list .Release.Namespace }}{{ end }}
{{- toJson (uniq $ns) }}
{{- end }}

{{/* PromQL label matchers selecting this release's scraped operator pods. */}}
{{- define "pangea-operator.promSelector" -}}
job="{{ include "pangea-operator.fullname" . }}-metrics",namespace="{{ .Release.Namespace }}"
{{- end }}
