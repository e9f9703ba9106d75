{{/*
Non-secret settings, as ConfigMap data. Secrets never appear here: they are secretKeyRefs
(wee5.secretEnv).
*/}}

{{/* Settings every process shares, including where each gRPC service listens and is called. */}}
{{- define "wee5.commonConfig" -}}
WEE5_ENVIRONMENT: {{ .Values.config.environment | default "production" | quote }}
WEE5_LOG_LEVEL: {{ .Values.config.logLevel | quote }}
WEE5_REDIS_PREFIX: {{ .Values.config.redisPrefix | quote }}
WEE5_EVENT_PREFIX: {{ .Values.config.eventPrefix | quote }}
WEE5_GRPC_BIND_HOST: "0.0.0.0"
WEE5_GRPC_DEADLINE_SECONDS: {{ .Values.config.grpcDeadlineSeconds | toString | quote }}
WEE5_SHUTDOWN_GRACE_SECONDS: {{ .Values.config.shutdownGraceSeconds | toString | quote }}
{{- if .Values.metrics.enabled }}
WEE5_METRICS_PORT: {{ .Values.metrics.port | toString | quote }}
{{- end }}
{{- /* The release error reports name: the image's version (its tag, else its digest). */}}
WEE5_RELEASE: {{ .Values.image.digest | default (.Values.image.tag | default .Chart.AppVersion) | quote }}
{{- with .Values.observability.otlpEndpoint }}
OTEL_EXPORTER_OTLP_ENDPOINT: {{ . | quote }}
OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf"
{{- end }}
{{- range $name := include "wee5.grpcServices" . | fromJsonArray }}
{{ printf "WEE5_%s_ADDR" (upper $name) }}: {{ printf "%s:%d" (include "wee5.componentName" (dict "root" $ "name" $name)) (int (index $.Values $name).port) | quote }}
{{- end }}
{{- with .Values.internalTls }}{{ if .enabled }}
WEE5_GRPC_TLS_CERT_FILE: "/etc/wee5/grpc-tls/tls.crt"
WEE5_GRPC_TLS_KEY_FILE: "/etc/wee5/grpc-tls/tls.key"
WEE5_GRPC_TLS_CA_FILE: "/etc/wee5/grpc-tls/ca.crt"
WEE5_GRPC_HEALTH_PORT: {{ .healthPort | toString | quote }}
{{- with .serverName }}
WEE5_GRPC_TLS_SERVER_NAME: {{ . | quote }}
{{- end }}
{{- end }}{{ end }}
{{- range $key, $value := .Values.config.extraEnv }}
{{ $key }}: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{/* Settings of one service: what the chart derives from its values, then its `config`. */}}
{{- define "wee5.serviceConfig" -}}
{{- $svc := index .root.Values .name }}
{{- if eq .name "gateway" }}
WEE5_GATEWAY_HOST: "0.0.0.0"
WEE5_GATEWAY_PORT: {{ $svc.port | toString | quote }}
{{- /* The resources pages send uploads to, and redirect downloads to, the file endpoint. */}}
WEE5_RESOURCES_PUBLIC_URL: {{ .root.Values.resources.publicUrl | quote }}
{{- end }}
{{- if eq .name "resources" }}
WEE5_RESOURCES_HTTP_HOST: "0.0.0.0"
WEE5_RESOURCES_HTTP_PORT: {{ $svc.httpPort | toString | quote }}
WEE5_RESOURCES_PUBLIC_URL: {{ $svc.publicUrl | quote }}
WEE5_STORAGE_BACKEND: {{ $svc.storage.backend | quote }}
{{- if eq $svc.storage.backend "local" }}
WEE5_STORAGE_DIR: {{ $svc.storage.local.path | quote }}
{{- else }}
WEE5_S3_BUCKET: {{ required "resources.storage.s3.bucket is required when the storage backend is s3" $svc.storage.s3.bucket | quote }}
{{- with $svc.storage.s3.endpointUrl }}
WEE5_S3_ENDPOINT_URL: {{ . | quote }}
{{- end }}
{{- with $svc.storage.s3.region }}
WEE5_S3_REGION: {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- if eq .name "discord" }}
WEE5_DISCORD_HEALTH_PORT: {{ $svc.healthPort | toString | quote }}
{{- with $svc.shardCount }}
WEE5_DISCORD_SHARD_COUNT: {{ . | toString | quote }}
{{- end }}
{{- end }}
{{- range $key, $value := $svc.config }}
{{ $key }}: {{ $value | toString | quote }}
{{- end }}
{{- end }}
