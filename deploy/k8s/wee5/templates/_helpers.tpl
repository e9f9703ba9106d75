{{/*
Names, labels and the pieces every workload shares. Templates that take a context are called
with (dict "root" $ "name" "<service>"), or "component" where the labels are not a service's.
*/}}

{{- define "wee5.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "wee5.fullname" -}}
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

{{- define "wee5.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <fullname>-<name>, short enough for any suffix the chart adds. */}}
{{- define "wee5.componentName" -}}
{{- printf "%s-%s" (include "wee5.fullname" .root | trunc 36 | trimSuffix "-") .name }}
{{- end }}

{{/* Labels that select the pods of one component: (dict "root" $ "component" "xp"). */}}
{{- define "wee5.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wee5.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels that select every pod of the release (the default-deny policy). */}}
{{- define "wee5.releaseSelectorLabels" -}}
app.kubernetes.io/name: {{ include "wee5.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "wee5.labels" -}}
helm.sh/chart: {{ include "wee5.chart" .root }}
{{ include "wee5.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Values.image.tag | default .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: wee5
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "wee5.image" -}}
{{- $image := .Values.image }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository ($image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* The gRPC services, as a JSON list (fromJsonArray). */}}
{{- define "wee5.grpcServices" -}}
["xp", "rewards", "benchmarks", "resources", "billing"]
{{- end }}

{{/* "true" when at least one enabled task runs with this service's settings. */}}
{{- define "wee5.hasTasks" -}}
{{- range $job, $spec := .root.Values.tasks.jobs }}
{{- if and $spec.enabled (eq $spec.service $.name) }}true{{ end }}
{{- end }}
{{- end }}

{{/* The components that call this gRPC service, as a JSON list: the gateway (which calls
every service), each service that names it in `grpcCalls`, and that service's tasks, and the
Discord bot when enabled and it names it. */}}
{{- define "wee5.callers" -}}
{{- $root := .root }}
{{- $callers := list "gateway" }}
{{- range $caller := include "wee5.grpcServices" $root | fromJsonArray }}
{{- if has $.name (index $root.Values $caller).grpcCalls }}
{{- $callers = append $callers $caller }}
{{- if include "wee5.hasTasks" (dict "root" $root "name" $caller) }}
{{- $callers = append $callers (printf "%s-tasks" $caller) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and $root.Values.discord.enabled (has $.name $root.Values.discord.grpcCalls) }}
{{- $callers = append $callers "discord" }}
{{- end }}
{{- toJson $callers }}
{{- end }}

{{/* The services this one calls over gRPC (the gateway calls all of them), as JSON. */}}
{{- define "wee5.callees" -}}
{{- if eq .name "gateway" }}
{{- include "wee5.grpcServices" .root }}
{{- else }}
{{- toJson ((index .root.Values .name).grpcCalls | default list) }}
{{- end }}
{{- end }}

{{- define "wee5.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "wee5.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Secret settings of a service: `secrets.env` overlaid with the service's `secretEnv`,
every one a secretKeyRef. */}}
{{- define "wee5.secretEnv" -}}
{{- $root := .root }}
{{- $entries := merge (deepCopy ((index $root.Values .name).secretEnv | default dict)) $root.Values.secrets.env }}
{{- range $envName := keys $entries | sortAlpha }}
{{- $ref := index $entries $envName }}
- name: {{ $envName }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.secret | default $root.Values.secrets.name }}
      key: {{ $ref.key }}
      {{- if $ref.optional }}
      optional: true
      {{- end }}
{{- end }}
{{- end }}

{{/* The non-secret settings of a service: the shared ConfigMap, then its own. */}}
{{- define "wee5.envFrom" -}}
- configMapRef:
    name: {{ include "wee5.fullname" .root }}-config
- configMapRef:
    name: {{ include "wee5.componentName" . }}
{{- end }}

{{/* Restart pods when their settings change. */}}
{{- define "wee5.configChecksum" -}}
{{- printf "%s\n%s" (include "wee5.commonConfig" .root) (include "wee5.serviceConfig" .) | sha256sum }}
{{- end }}

{{- define "wee5.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end }}

{{- define "wee5.internalTlsVolume" -}}
{{- if .Values.internalTls.enabled }}
- name: grpc-tls
  secret:
    secretName: {{ .Values.internalTls.secretName }}
    defaultMode: 0440
{{- end }}
{{- end }}

{{- define "wee5.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/* The certificate, key and CA for calls between services (values: internalTls), in the
pods of services and their tasks. */}}
{{- define "wee5.internalTlsVolumeMount" -}}
{{- if .Values.internalTls.enabled }}
- name: grpc-tls
  mountPath: /etc/wee5/grpc-tls
  readOnly: true
{{- end }}
{{- end }}

{{/* Scheduling and placement a service's pods share with its tasks. */}}
{{- define "wee5.podPlacement" -}}
{{- $svc := index .root.Values .name }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $svc.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $svc.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $svc.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $svc.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* True when the resources service keeps files on a volume only one pod may use. */}}
{{- define "wee5.resources.singleWriter" -}}
{{- $storage := .Values.resources.storage }}
{{- $shared := and $storage.local.persistence.enabled (eq $storage.local.persistence.accessMode "ReadWriteMany") }}
{{- if and (eq $storage.backend "local") (not $shared) }}true{{ end }}
{{- end }}
