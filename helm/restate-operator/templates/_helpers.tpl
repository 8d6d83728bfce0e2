{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "restate-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name of the operator's objects. */}}
{{- define "restate-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "restate-operator.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "restate-operator.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Selector labels: the NetworkPolicies of every RestateCluster let pods labelled
     app.kubernetes.io/name=restate-operator reach the admin API, so the name is fixed. */}}
{{- define "restate-operator.selectorLabels" -}}
app.kubernetes.io/name: restate-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "restate-operator.labels" -}}
{{ include "restate-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "restate-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "restate-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}
