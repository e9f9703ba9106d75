{{/*
The objects every service has, each called with (dict "root" $ "name" "<service>"):
ConfigMap, ServiceAccount, Deployment, Service, PodDisruptionBudget, HorizontalPodAutoscaler.
The per-service folders (templates/<service>/) list which of them a service gets.
*/}}

{{- define "wee5.configMap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "wee5.componentName" . }}
  labels:
    {{- include "wee5.labels" (dict "root" .root "component" .name) | nindent 4 }}
{{- with include "wee5.serviceConfig" . }}
data:
  {{- . | nindent 2 }}
{{- else }}
data: {}
{{- end }}
{{- end }}

{{- define "wee5.serviceAccount" -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "wee5.componentName" . }}
  labels:
    {{- include "wee5.labels" (dict "root" .root "component" .name) | nindent 4 }}
# No WEE5 process talks to the Kubernetes API.
automountServiceAccountToken: false
{{- end }}

{{- define "wee5.deployment" -}}
{{- $root := .root }}
{{- $name := .name }}
{{- $svc := index $root.Values $name }}
{{- $labels := dict "root" $root "component" $name }}
{{- $http := eq $name "gateway" }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "wee5.componentName" . }}
  labels:
    {{- include "wee5.labels" $labels | nindent 4 }}
spec:
  {{- if not $svc.autoscaling.enabled }}
  replicas: {{ $svc.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "wee5.selectorLabels" $labels | nindent 6 }}
  strategy:
    {{- if and (eq $name "resources") (include "wee5.resources.singleWriter" $root) }}
    # One pod at a time may hold the local storage volume.
    type: Recreate
    {{- else }}
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
    {{- end }}
  template:
    metadata:
      labels:
        {{- include "wee5.selectorLabels" $labels | nindent 8 }}
        {{- with $svc.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        checksum/config: {{ include "wee5.configChecksum" . }}
        {{- with $svc.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "wee5.componentName" . }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      securityContext:
        {{- include "wee5.podSecurityContext" $root | nindent 8 }}
      terminationGracePeriodSeconds: {{ add $root.Values.config.shutdownGraceSeconds $root.Values.preStopSleepSeconds 15 }}
      {{- include "wee5.podPlacement" . | nindent 6 }}
      topologySpreadConstraints:
        {{- if $svc.topologySpreadConstraints }}
        {{- toYaml $svc.topologySpreadConstraints | nindent 8 }}
        {{- else }}
        # Spread replicas over nodes when the scheduler can.
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "wee5.selectorLabels" $labels | nindent 14 }}
        {{- end }}
      containers:
        - name: {{ $name }}
          image: {{ include "wee5.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: ["python", "-m", "wee5_{{ $name }}"]
          {{- if $root.Values.migrations.enabled }}
          # The migration hook Jobs migrated the schema before these pods start.
          args: ["serve", "--no-migrate"]
          {{- else }}
          # Each pod migrates its schema as it starts (serialized by an advisory lock).
          args: ["serve"]
          {{- end }}
          ports:
            {{- if $http }}
            - name: http
              containerPort: {{ $svc.port }}
              protocol: TCP
            {{- else }}
            - name: grpc
              containerPort: {{ $svc.port }}
              protocol: TCP
            {{- end }}
            {{- if eq $name "resources" }}
            - name: http
              containerPort: {{ $svc.httpPort }}
              protocol: TCP
            {{- end }}
            {{- if and (not $http) $root.Values.internalTls.enabled }}
            - name: health
              containerPort: {{ $root.Values.internalTls.healthPort }}
              protocol: TCP
            {{- end }}
            {{- if $root.Values.metrics.enabled }}
            - name: metrics
              containerPort: {{ $root.Values.metrics.port }}
              protocol: TCP
            {{- end }}
          envFrom:
            {{- include "wee5.envFrom" . | nindent 12 }}
          env:
            {{- include "wee5.secretEnv" . | nindent 12 }}
          {{- $probes := $root.Values.probes }}
          {{- if $http }}
          startupProbe:
            httpGet: {path: /healthz, port: http}
            {{- toYaml $probes.startup | nindent 12 }}
          livenessProbe:
            httpGet: {path: /healthz, port: http}
            {{- toYaml $probes.liveness | nindent 12 }}
          # /readyz also checks the database and every downstream gRPC service.
          readinessProbe:
            httpGet: {path: /readyz, port: http}
            {{- toYaml $probes.readiness | nindent 12 }}
          {{- else }}
          # Alive is "the process answers" (health service `liveness`, SERVING whatever its
          # dependencies do): a Postgres, Redis or NATS outage makes a pod unready, never
          # restarted. Ready is the overall health, NOT_SERVING while a dependency is down.
          {{- /* With TLS on, the plaintext health port (the probes cannot speak TLS). */}}
          {{- $probePort := ternary $root.Values.internalTls.healthPort $svc.port $root.Values.internalTls.enabled }}
          startupProbe:
            grpc: {port: {{ $probePort }}, service: liveness}
            {{- toYaml $probes.startup | nindent 12 }}
          livenessProbe:
            grpc: {port: {{ $probePort }}, service: liveness}
            {{- toYaml $probes.liveness | nindent 12 }}
          readinessProbe:
            grpc: {port: {{ $probePort }}}
            {{- toYaml $probes.readiness | nindent 12 }}
          {{- end }}
          lifecycle:
            preStop:
              sleep: {seconds: {{ $root.Values.preStopSleepSeconds }}}
          resources:
            {{- toYaml $svc.resources | nindent 12 }}
          securityContext:
            {{- include "wee5.containerSecurityContext" $root | nindent 12 }}
          volumeMounts:
            {{- include "wee5.tmpVolumeMount" $root | nindent 12 }}
            {{- include "wee5.internalTlsVolumeMount" $root | nindent 12 }}
            {{- if and (eq $name "resources") (eq $svc.storage.backend "local") }}
            - name: storage
              mountPath: {{ $svc.storage.local.path }}
            {{- end }}
      volumes:
        {{- include "wee5.tmpVolume" $root | nindent 8 }}
        {{- include "wee5.internalTlsVolume" $root | nindent 8 }}
        {{- if and (eq $name "resources") (eq $svc.storage.backend "local") }}
        - name: storage
          {{- if $svc.storage.local.persistence.enabled }}
          persistentVolumeClaim:
            claimName: {{ $svc.storage.local.persistence.existingClaim | default (printf "%s-storage" (include "wee5.componentName" .)) }}
          {{- else }}
          emptyDir: {}
          {{- end }}
        {{- end }}
{{- end }}

{{- define "wee5.service" -}}
{{- $svc := index .root.Values .name }}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "wee5.componentName" . }}
  labels:
    {{- include "wee5.labels" (dict "root" .root "component" .name) | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "wee5.selectorLabels" (dict "root" .root "component" .name) | nindent 4 }}
  ports:
    {{- if eq .name "gateway" }}
    - name: http
      port: {{ $svc.port }}
      targetPort: http
      protocol: TCP
      appProtocol: http
    {{- else }}
    - name: grpc
      port: {{ $svc.port }}
      targetPort: grpc
      protocol: TCP
      appProtocol: kubernetes.io/h2c
    {{- end }}
    {{- if eq .name "resources" }}
    - name: http
      port: {{ $svc.httpPort }}
      targetPort: http
      protocol: TCP
      appProtocol: http
    {{- end }}
    {{- if .root.Values.metrics.enabled }}
    - name: metrics
      port: {{ .root.Values.metrics.port }}
      targetPort: metrics
      protocol: TCP
      appProtocol: http
    {{- end }}
{{- end }}

{{- define "wee5.podDisruptionBudget" -}}
{{- $svc := index .root.Values .name }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "wee5.componentName" . }}
  labels:
    {{- include "wee5.labels" (dict "root" .root "component" .name) | nindent 4 }}
spec:
  {{- if hasKey $svc.pdb "minAvailable" }}
  minAvailable: {{ $svc.pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $svc.pdb.maxUnavailable | default 1 }}
  {{- end }}
  # A pod that never became ready may always be evicted (a broken rollout cannot block a
  # node drain).
  unhealthyPodEvictionPolicy: AlwaysAllow
  selector:
    matchLabels:
      {{- include "wee5.selectorLabels" (dict "root" .root "component" .name) | nindent 6 }}
{{- end }}

{{- define "wee5.horizontalPodAutoscaler" -}}
{{- $svc := index .root.Values .name }}
{{- if $svc.autoscaling.enabled }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "wee5.componentName" . }}
  labels:
    {{- include "wee5.labels" (dict "root" .root "component" .name) | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "wee5.componentName" . }}
  minReplicas: {{ $svc.autoscaling.minReplicas }}
  maxReplicas: {{ $svc.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $svc.autoscaling.targetCPUUtilizationPercentage }}
    {{- with $svc.autoscaling.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
{{- end }}
{{- end }}

{{/* An Ingress to one named port of a service, from its `ingress` values. */}}
{{- define "wee5.ingress" -}}
{{- $svc := index .root.Values .name }}
{{- $ingress := $svc.ingress }}
{{- if $ingress.enabled }}
{{- $serviceName := include "wee5.componentName" . }}
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ $serviceName }}
  labels:
    {{- include "wee5.labels" (dict "root" .root "component" .name) | nindent 4 }}
  {{- with $ingress.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with $ingress.className }}
  ingressClassName: {{ . }}
  {{- end }}
  {{- with $ingress.tls }}
  tls:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  rules:
    {{- range $ingress.hosts }}
    - http:
        paths:
          {{- range .paths }}
          - path: {{ .path }}
            pathType: {{ .pathType }}
            backend:
              service:
                name: {{ $serviceName }}
                port:
                  name: http
          {{- end }}
      {{- with .host }}
      host: {{ . | quote }}
      {{- end }}
    {{- end }}
{{- end }}
{{- end }}
