{{/* The chart's name, or nameOverride. */}}
{{- define "cmu-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The objects' name: fullnameOverride, else the release's name when it
holds the chart's, else <release>-<chart>. */}}
{{- define "cmu-exporter.fullname" -}}
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

{{- define "cmu-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cmu-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "cmu-exporter.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "cmu-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The Secret holding the software statement. */}}
{{- define "cmu-exporter.statementSecret" -}}
{{- if and .Values.softwareStatement.existingSecret .Values.softwareStatement.value }}
{{- fail "softwareStatement: give existingSecret (a Secret of yours) or value (the chart makes the Secret), not both" }}
{{- end }}
{{- default (printf "%s-statement" (include "cmu-exporter.fullname" .)) .Values.softwareStatement.existingSecret }}
{{- end }}

{{- define "cmu-exporter.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
