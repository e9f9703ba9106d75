{{/*
NetworkPolicies. templates/networkpolicy.yaml denies everything to every pod of the release;
each component then gets its own policy with exactly the traffic it needs.
*/}}

{{- define "wee5.egressDns" -}}
- ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
  {{- with .Values.networkPolicy.dns }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* Egress to one external store (postgres, redis, nats): (dict "root" $ "store" "redis"). */}}
{{- define "wee5.egressStore" -}}
{{- $spec := index .root.Values.networkPolicy .store }}
- ports:
    {{- range $spec.ports }}
    - {port: {{ . }}, protocol: TCP}
    {{- end }}
  {{- with $spec.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* What a service's pods (and its tasks) may reach: DNS, Postgres, Redis, NATS, the gRPC
services it calls, third-party HTTPS when `egressHttps`, and its `extraEgress`. */}}
{{- define "wee5.serviceEgress" -}}
{{- $root := .root }}
{{- $svc := index $root.Values .name }}
{{- include "wee5.egressDns" $root }}
{{- range $store := list "postgres" "redis" "nats" }}
{{ include "wee5.egressStore" (dict "root" $root "store" $store) }}
{{- end }}
{{- range $callee := include "wee5.callees" . | fromJsonArray }}
- ports:
    - {port: {{ (index $root.Values $callee).port }}, protocol: TCP}
  to:
    - podSelector:
        matchLabels:
          {{- include "wee5.selectorLabels" (dict "root" $root "component" $callee) | nindent 10 }}
{{- end }}
{{- if $svc.egressHttps }}
{{- $https := $root.Values.networkPolicy.https }}
- ports:
    {{- range $https.ports }}
    - {port: {{ . }}, protocol: TCP}
    {{- end }}
  {{- with $https.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- with $root.Values.observability.egress }}
{{ toYaml . }}
{{- end }}
{{- with $svc.networkPolicy.extraEgress }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The policy of a service's pods: ingress from its callers (the gateway: from the ingress
controller), egress as wee5.serviceEgress. */}}
{{- define "wee5.serviceNetworkPolicy" -}}
{{- if .root.Values.networkPolicy.enabled }}
{{- $root := .root }}
{{- $svc := index $root.Values .name }}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "wee5.componentName" . }}
  labels:
    {{- include "wee5.labels" (dict "root" $root "component" .name) | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "wee5.selectorLabels" (dict "root" $root "component" .name) | nindent 6 }}
  policyTypes: [Ingress, Egress]
  ingress:
    {{- if eq .name "gateway" }}
    {{- with $root.Values.networkPolicy.ingressControllers }}
    - ports:
        - {port: {{ $svc.port }}, protocol: TCP}
      from:
        {{- toYaml . | nindent 8 }}
    {{- end }}
    # `helm test` asks /readyz from a pod of its own.
    - ports:
        - {port: {{ $svc.port }}, protocol: TCP}
      from:
        - podSelector:
            matchLabels:
              {{- include "wee5.selectorLabels" (dict "root" $root "component" "smoke-test") | nindent 14 }}
    {{- else }}
    - ports:
        - {port: {{ $svc.port }}, protocol: TCP}
      from:
        {{- range $caller := include "wee5.callers" . | fromJsonArray }}
        - podSelector:
            matchLabels:
              {{- include "wee5.selectorLabels" (dict "root" $root "component" $caller) | nindent 14 }}
        {{- end }}
    {{- end }}
    {{- if and (eq .name "resources") (eq $svc.storage.backend "local") }}
    {{- with $root.Values.networkPolicy.ingressControllers }}
    # Browsers fetch the local backend's signed file URLs through the ingress controller.
    - ports:
        - {port: {{ $svc.httpPort }}, protocol: TCP}
      from:
        {{- toYaml . | nindent 8 }}
    {{- end }}
    {{- end }}
    {{- if $root.Values.metrics.enabled }}
    {{- with $root.Values.metrics.scrapers }}
    # Prometheus scrapes /metrics.
    - ports:
        - {port: {{ $root.Values.metrics.port }}, protocol: TCP}
      from:
        {{- toYaml . | nindent 8 }}
    {{- end }}
    {{- end }}
    {{- with $svc.networkPolicy.extraIngress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  egress:
    {{- include "wee5.serviceEgress" . | nindent 4 }}
{{- end }}
{{- end }}

{{/* The policy of a service's CronJob pods: nothing comes in; out, what the service may. */}}
{{- define "wee5.tasksNetworkPolicy" -}}
{{- if .root.Values.networkPolicy.enabled }}
{{- $component := printf "%s-tasks" .name }}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "wee5.componentName" (dict "root" .root "name" $component) }}
  labels:
    {{- include "wee5.labels" (dict "root" .root "component" $component) | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "wee5.selectorLabels" (dict "root" .root "component" $component) | nindent 6 }}
  policyTypes: [Ingress, Egress]
  ingress: []
  egress:
    {{- include "wee5.serviceEgress" . | nindent 4 }}
{{- end }}
{{- end }}
