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

{{/* Replicas that all push: one shard, a remote_write, the same instance
label in every remote's external_labels, and no scrape of the replicas
(docs/deployment.md, Two replicas). */}}
{{- define "cmu-exporter.replicas" -}}
{{- $replicas := int .Values.replicas }}
{{- if gt $replicas 1 }}
{{- if gt (int .Values.shards) 1 }}
{{- fail "replicas: replicas that all push poll every report; with shards > 1, keep replicas: 1" }}
{{- end }}
{{- if not .Values.config.remote_write }}
{{- fail "replicas: more than one replica needs config.remote_write: scraped replicas would give every series twice (under two instance labels); scrape one replica, or push" }}
{{- end }}
{{- range .Values.config.remote_write }}
{{- if not (and .external_labels .external_labels.instance) }}
{{- fail (printf "replicas: remote_write %s needs external_labels.instance, the same for every replica (e.g. instance: cmu-exporter), so that the store gets one series from both" .url) }}
{{- end }}
{{- end }}
{{- if .Values.serviceMonitor.enabled }}
{{- fail "replicas: with more than one replica, set serviceMonitor.enabled: false: the push carries the self-metrics, and a scrape of both replicas gives every series twice" }}
{{- end }}
{{- end }}
{{- $replicas }}
{{- end }}
