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

{{/* A duration as the binary reads it (humantime's spans: "75s", "1m 15s", "1.5 min", "500ms",
"2 hours"; or bare seconds), in seconds. The schema admits exactly these. */}}
{{- define "eso-recovery.seconds" -}}
{{- $d := toString . | trim -}}
{{- if regexMatch "^[0-9]+$" $d -}}
{{- $d -}}
{{- else -}}
{{- $per := dict "nanos" "0.000000001" "nsec" "0.000000001" "ns" "0.000000001" "usec" "0.000001" "us" "0.000001" "µs" "0.000001" "millis" "0.001" "msec" "0.001" "ms" "0.001" "seconds" "1" "second" "1" "secs" "1" "sec" "1" "s" "1" "minutes" "60" "minute" "60" "mins" "60" "min" "60" "m" "60" "hours" "3600" "hour" "3600" "hrs" "3600" "hr" "3600" "h" "3600" "days" "86400" "day" "86400" "d" "86400" "weeks" "604800" "week" "604800" "wks" "604800" "wk" "604800" "w" "604800" "months" "2630016" "month" "2630016" "M" "2630016" "years" "31557600" "year" "31557600" "yrs" "31557600" "yr" "31557600" "y" "31557600" -}}
{{- $total := 0.0 -}}
{{- range regexFindAll "[0-9]+(\\.[0-9]+)?\\s*[a-zA-Zµ]+" $d -1 -}}
{{- $unit := regexFind "[a-zA-Zµ]+$" . -}}
{{- $n := regexFind "^[0-9]+(\\.[0-9]+)?" . | float64 -}}
{{- $total = addf $total (mulf $n (get $per $unit | float64)) -}}
{{- end -}}
{{- $total -}}
{{- end -}}
{{- end -}}

{{/* The seconds between two runs: the schedule's period. The coverage checks know every minute
and every N minutes. */}}
{{- define "eso-recovery.period" -}}
{{- $s := .Values.schedule | trim -}}
{{- if eq $s "* * * * *" -}}
60
{{- else if regexMatch "^\\*/[1-9][0-9]? \\* \\* \\* \\*$" $s -}}
{{- mul (trimPrefix "*/" (index (splitList " " $s) 0) | atoi) 60 -}}
{{- else -}}
{{- fail (printf "schedule %q: use \"* * * * *\" (the default) or \"*/N * * * *\"; the chart derives from it how long a run awaits Vault so that one is always watching" $s) -}}
{{- end -}}
{{- end -}}

{{/* Fails on values that would leave Vault unwatched for a moment of an outage, cut a run's
await short, or let a third run start while two still run (see values.yaml, config.awaitVault). */}}
{{- define "eso-recovery.coverage" -}}
{{- $period := include "eso-recovery.period" . | atoi -}}
{{- $c := .Values.config -}}
{{- if or (kindIs "invalid" $c.awaitVault) (kindIs "invalid" .Values.activeDeadlineSeconds) (kindIs "invalid" .Values.startingDeadlineSeconds) -}}
{{- fail "config.awaitVault, activeDeadlineSeconds and startingDeadlineSeconds must all be set: together they keep one run watching Vault at every moment of an outage and never more than two at once" -}}
{{- end -}}
{{- $await := include "eso-recovery.seconds" $c.awaitVault | float64 -}}
{{- $timeout := include "eso-recovery.seconds" $c.timeout | float64 -}}
{{- $deadline := .Values.activeDeadlineSeconds | float64 -}}
{{- $starting := .Values.startingDeadlineSeconds | float64 -}}
{{- if lt $await (addf $period 10) -}}
{{- fail (printf "config.awaitVault %s leaves Vault unwatched near the end of each period: a run must await at least the schedule's period (%ds) plus 10s for the next run's pod to start; set it to %ds or more" (toString $c.awaitVault) $period (add $period 10)) -}}
{{- end -}}
{{- if lt $deadline (addf $await $timeout 10) -}}
{{- fail (printf "activeDeadlineSeconds %v would stop a run before its await (config.awaitVault %s) and the rest of it (config.timeout %s) are over, with 10s for its start; set it to %v or more" .Values.activeDeadlineSeconds (toString $c.awaitVault) (toString $c.timeout) (ceil (addf $await $timeout 10))) -}}
{{- end -}}
{{- if gt (addf $starting $deadline) (float64 (sub (mul 2 $period) 5)) -}}
{{- fail (printf "startingDeadlineSeconds %v + activeDeadlineSeconds %v must stay within two periods of the schedule (%ds) less 5s, so a run has always ended before the one two ticks later starts (never three at once); set startingDeadlineSeconds to %v or less" .Values.startingDeadlineSeconds .Values.activeDeadlineSeconds (mul 2 $period) (floor (subf (float64 (sub (mul 2 $period) 5)) $deadline))) -}}
{{- end -}}
{{- end -}}
