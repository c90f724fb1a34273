{{/* The release's full name: the release name if it already says eso-recovery. */}}
{{- define "eso-recovery.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The labels every object has: the two the kustomize manifests set, and Helm's. */}}
{{- define "eso-recovery.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/part-of: external-secrets
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "eso-recovery.serviceAccountName" -}}
{{- default (include "eso-recovery.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* registry/repository, then @digest if given, else :tag (default: appVersion). */}}
{{- define "eso-recovery.image" -}}
{{- $repo := .Values.image.repository -}}
{{- if .Values.image.registry -}}{{- $repo = printf "%s/%s" .Values.image.registry $repo -}}{{- end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repo .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* One env entry when the value is set (not null); lists are joined with commas. */}}
{{- define "eso-recovery.env" -}}
{{- $value := index . 1 -}}
{{- if not (kindIs "invalid" $value) }}
- name: {{ index . 0 }}
  value: {{ if kindIs "slice" $value }}{{ join "," $value | quote }}{{ else }}{{ toString $value | quote }}{{ end }}
{{- end -}}
{{- end -}}
