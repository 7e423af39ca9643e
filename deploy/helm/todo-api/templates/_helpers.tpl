{{/* Names, labels and the checks every manifest of the chart shares. */}}

{{- define "todo-api.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The objects' base name: DNS names are at most 63 characters. */}}
{{- define "todo-api.fullname" -}}
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

{{- define "todo-api.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "todo-api.labels" -}}
helm.sh/chart: {{ include "todo-api.chart" . }}
{{ include "todo-api.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "todo-api.selectorLabels" -}}
app.kubernetes.io/name: {{ include "todo-api.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The serving pods: the component keeps the migration Job's pods out of the Service, the
PodDisruptionBudget and the spread. */}}
{{- define "todo-api.apiSelectorLabels" -}}
{{ include "todo-api.selectorLabels" . }}
app.kubernetes.io/component: api
{{- end }}

{{- define "todo-api.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{- define "todo-api.secretName" -}}
{{- .Values.secret.existingSecret | default (include "todo-api.fullname" .) }}
{{- end }}

{{/* The variables held in a Secret: never a plain value in a pod's spec, nor in `env`. */}}
{{- define "todo-api.secretVariables" -}}
BETTER_AUTH_SECRET,DATABASE_URL,DATABASE_DIRECT_URL,REDIS_URL,METRICS_TOKEN,OPENAI_API_KEY
{{- end }}

{{/* The variables the chart sets itself, from other values. */}}
{{- define "todo-api.chartVariables" -}}
AUTO_MIGRATE,WEB_CONCURRENCY,PORT,METRICS_ENABLED
{{- end }}

{{/* The Secret's keys the pods read, comma-separated: existingSecretKeys, or the names of the
chart's own non-empty secret.values. */}}
{{- define "todo-api.secretKeys" -}}
{{- if .Values.secret.existingSecret }}
{{- join "," .Values.secret.existingSecretKeys }}
{{- else }}
{{- $keys := list }}
{{- range $key, $value := .Values.secret.values }}
{{- if $value }}
{{- $keys = append $keys $key }}
{{- end }}
{{- end }}
{{- join "," $keys }}
{{- end }}
{{- end }}

{{/* Server processes per pod (WEB_CONCURRENCY): one per whole CPU of resources.requests.cpu
("500m", "2", 2, "1.5"), at least one. */}}
{{- define "todo-api.workers" -}}
{{- $cpu := toString (dig "requests" "cpu" "1" (.Values.resources | default dict)) }}
{{- $millicores := 0 }}
{{- if hasSuffix "m" $cpu }}
{{- $millicores = trimSuffix "m" $cpu | atoi }}
{{- else }}
{{- $millicores = mulf (float64 $cpu) 1000 | int }}
{{- end }}
{{- max 1 (div $millicores 1000) }}
{{- end }}

{{/* Seconds the server gives the requests in flight after SIGTERM before it exits:
GRACEFUL_SHUTDOWN_SECONDS in todo_api/cli.py (tests/unit/test_helm_chart.py holds them equal). */}}
{{- define "todo-api.drainSeconds" -}}
30
{{- end }}

{{/* Refuses values that would deploy something broken, saying why. */}}
{{- define "todo-api.validate" -}}
{{- $keys := splitList "," (include "todo-api.secretKeys" .) }}
{{- $env := .Values.env | default dict }}
{{- range $name := splitList "," (include "todo-api.secretVariables" .) }}
{{- if hasKey $env $name }}
{{- fail (printf "env.%s: %s is a secret; give it in secret.values, or in the Secret named by secret.existingSecret (listed in secret.existingSecretKeys)" $name $name) }}
{{- end }}
{{- end }}
{{- range $name := splitList "," (include "todo-api.chartVariables" .) }}
{{- if hasKey $env $name }}
{{- fail (printf "env.%s: the chart sets %s itself (see values.yaml)" $name $name) }}
{{- end }}
{{- end }}
{{- if not (has "DATABASE_URL" $keys) }}
{{- fail "DATABASE_URL is required (secret.values.DATABASE_URL, or in secret.existingSecretKeys): without it each pod would keep a SQLite file of its own" }}
{{- end }}
{{- if not (or (has "BETTER_AUTH_SECRET" $keys) $env.BETTER_AUTH_URL) }}
{{- fail "BETTER_AUTH_SECRET (in the Secret) or env.BETTER_AUTH_URL is required: without either the API can check no credential" }}
{{- end }}
{{- $workers := include "todo-api.workers" . | atoi }}
{{- $replicas := int .Values.replicaCount }}
{{- if and (or (gt $replicas 1) .Values.autoscaling.enabled (gt $workers 1)) (not (has "REDIS_URL" $keys)) }}
{{- fail (printf "REDIS_URL is required with more than one server process (replicaCount %d, autoscaling.enabled %t, %d process(es) per pod from resources.requests.cpu): the rate limits and per-user stream bounds must be shared across the replicas, or each counts apart and a client gets that many times the limit. Set secret.values.REDIS_URL, or list REDIS_URL in secret.existingSecretKeys" $replicas .Values.autoscaling.enabled $workers) }}
{{- end }}
{{- $drain := include "todo-api.drainSeconds" . | atoi }}
{{- if le (int .Values.terminationGracePeriodSeconds) (add (int .Values.preStopSleepSeconds) $drain) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be more than preStopSleepSeconds (%d) plus the server's %d s drain on SIGTERM, or requests in flight are cut off" (int .Values.terminationGracePeriodSeconds) (int .Values.preStopSleepSeconds) $drain) }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not (has "METRICS_TOKEN" $keys)) }}
{{- fail "metrics.serviceMonitor.enabled needs METRICS_TOKEN in the Secret: the ServiceMonitor scrapes with it, and /api/metrics should not be open to the cluster" }}
{{- end }}
{{- if and .Values.migrations.enabled (not (has .Values.migrations.databaseUrlKey $keys)) }}
{{- fail (printf "migrations.databaseUrlKey: the Secret has no %s for the migration Job" .Values.migrations.databaseUrlKey) }}
{{- end }}
{{- end }}

{{/* The env entries of every key of the Secret, each a secretKeyRef. */}}
{{- define "todo-api.secretEnv" -}}
{{- $secret := include "todo-api.secretName" . }}
{{- range $key := splitList "," (include "todo-api.secretKeys" .) }}
{{- if $key }}
- name: {{ $key }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $key }}
{{- end }}
{{- end }}
{{- end }}

{{/* Pod security: the image's own unprivileged user (uid 10001), Pod Security Standards'
"restricted" profile. */}}
{{- define "todo-api.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The service writes nothing but to /tmp (an emptyDir), so its root filesystem is read-only. */}}
{{- define "todo-api.containerSecurityContext" -}}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop:
    - ALL
{{- end }}

{{- define "todo-api.tmpVolume" -}}
- name: tmp
  emptyDir:
    {{- with .Values.tmpVolume.medium }}
    medium: {{ . }}
    {{- end }}
    {{- with .Values.tmpVolume.sizeLimit }}
    sizeLimit: {{ . }}
    {{- end }}
{{- end }}
