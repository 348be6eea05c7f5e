{{/* _helpers.tpl: names, labels, images, pod settings and the wiring that several templates share. */}}

{{- define "confidoc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-confidoc, or fullnameOverride; leaves room for a component suffix. */}}
{{- define "confidoc.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* confidoc.component: the name of one component's objects. Call with (dict "root" $ "c" "api"). */}}
{{- define "confidoc.component" -}}
{{- printf "%s-%s" (include "confidoc.fullname" .root) .c -}}
{{- end -}}

{{- define "confidoc.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels of a component: (dict "root" $ "c" "api"). */}}
{{- define "confidoc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "confidoc.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .c }}
{{- end -}}

{{/* Every label of a component's objects: (dict "root" $ "c" "api"). */}}
{{- define "confidoc.labels" -}}
helm.sh/chart: {{ include "confidoc.chart" .root }}
{{ include "confidoc.selectorLabels" . }}
app.kubernetes.io/part-of: confidoc
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The release's pods, whatever their component (the default-deny policy). */}}
{{- define "confidoc.releaseSelector" -}}
app.kubernetes.io/name: {{ include "confidoc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "confidoc.annotations" -}}
{{- with .Values.commonAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* An image reference: (dict "root" $ "image" .Values.api.image). A digest wins over the tag. */}}
{{- define "confidoc.image" -}}
{{- $registry := .image.registry | default .root.Values.global.imageRegistry -}}
{{- $repo := .image.repository -}}
{{- if $registry }}{{ $repo = printf "%s/%s" $registry $repo }}{{ end -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $repo .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (.image.tag | default .root.Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/*
The pod-level settings every component shares, under spec: of a pod template:
(dict "root" $ "v" .Values.api). Service account tokens are never mounted:
no component talks to the Kubernetes API.
*/}}
{{- define "confidoc.podSpecCommon" -}}
automountServiceAccountToken: false
enableServiceLinks: false
{{- $rc := .v.runtimeClassName | default .root.Values.global.runtimeClassName }}
{{- if $rc }}
runtimeClassName: {{ $rc }}
{{- end }}
{{- with .root.Values.global.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
securityContext:
  {{- toYaml .v.podSecurityContext | nindent 2 }}
{{- with .v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Pod template metadata: (dict "root" $ "c" "api" "v" .Values.api "extra" (dict ...annotations)). */}}
{{- define "confidoc.podMetadata" -}}
labels:
  {{- include "confidoc.labels" (dict "root" .root "c" .c) | nindent 2 }}
  {{- with .v.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- $ann := merge (dict) (.extra | default (dict)) (.v.podAnnotations | default (dict)) }}
{{- with $ann }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* DNS names. */}}
{{- define "confidoc.svcDomain" -}}
{{- printf "%s.svc.%s" .Release.Namespace .Values.global.clusterDomain -}}
{{- end -}}
{{- define "confidoc.casHost" -}}
{{- printf "%s.%s" (include "confidoc.component" (dict "root" . "c" "cas")) (include "confidoc.svcDomain" .) -}}
{{- end -}}
{{- define "confidoc.apiHost" -}}
{{- printf "%s.%s" (include "confidoc.component" (dict "root" . "c" "api")) (include "confidoc.svcDomain" .) -}}
{{- end -}}
{{- define "confidoc.nginxSvcHost" -}}
{{- printf "%s.%s" (include "confidoc.component" (dict "root" . "c" "nginx")) (include "confidoc.svcDomain" .) -}}
{{- end -}}
{{/* The name in nginx's certificate, which clients must use. */}}
{{- define "confidoc.nginxHost" -}}
{{- .Values.nginx.hostname | default (include "confidoc.nginxSvcHost" .) -}}
{{- end -}}
{{- define "confidoc.memcachedHost" -}}
{{- printf "%s.%s" (include "confidoc.component" (dict "root" . "c" "memcached")) (include "confidoc.svcDomain" .) -}}
{{- end -}}
{{/* The name the API connects to MariaDB by (and checks in its certificate). */}}
{{- define "confidoc.dbHost" -}}
{{- if eq .Values.mariadb.mode "external" -}}
{{- required "mariadb.external.host is required with mariadb.mode=external" .Values.mariadb.external.host -}}
{{- else -}}
{{- printf "%s.%s" (include "confidoc.component" (dict "root" . "c" "mariadb")) (include "confidoc.svcDomain" .) -}}
{{- end -}}
{{- end -}}
{{- define "confidoc.dbPort" -}}
{{- if eq .Values.mariadb.mode "external" }}{{ .Values.mariadb.external.port }}{{ else }}{{ .Values.mariadb.port }}{{ end -}}
{{- end -}}

{{/* memcached_servers: each pod of a memcached StatefulSet by its stable DNS name. (dict "root" $ "c" "memcached" "n" 2) */}}
{{- define "confidoc.memcachedServers" -}}
{{- $name := include "confidoc.component" (dict "root" .root "c" .c) -}}
{{- $domain := include "confidoc.svcDomain" .root -}}
{{- $out := list -}}
{{- range $i := until (int .n) -}}
{{- $out = append $out (printf "%s-%d.%s.%s:%v" $name $i $name $domain $.root.Values.memcached.port) -}}
{{- end -}}
{{- join "," $out -}}
{{- end -}}

{{/*
Where a launched service finds its secrets: `confidoc-cas run` in a pod is not
root and RuntimeDefault seccomp refuses it a user namespace, so it writes them
to --fallback-dir, a directory it creates 0700 in a memory-backed emptyDir
(never on disk, seen by this container only).
*/}}
{{- define "confidoc.secretsDir" -}}/run/secrets{{- end -}}
{{/* The configuration of every service, mounted from ConfigMaps: STATE_DIR of the sessions. */}}
{{- define "confidoc.configDir" -}}/etc/confidoc{{- end -}}

{{/* The launcher prefix of a session: (dict "root" $ "s" "api"). */}}
{{- define "confidoc.launch" -}}
- /usr/bin/confidoc-cas
- run
- --session
- {{ .s }}
- --socket
- {{ printf "%s/agent.sock" .root.Values.nodeAgent.socketDir }}
- --fallback-dir
- {{ printf "%s/%s" (include "confidoc.secretsDir" .root) .s }}
- --
{{- end -}}

{{/* Volumes every launched service has: the agent's socket directory, the tmpfs for its secrets, /tmp. (dict "root" $ "tmpSize" "64Mi") */}}
{{- define "confidoc.launchVolumes" -}}
- name: agent-socket
{{- if eq .root.Values.nodeAgent.socketVolume.type "csi" }}
  csi:
    driver: {{ .root.Values.nodeAgent.socketVolume.csiDriver }}
    readOnly: true
{{- else }}
  hostPath:
    path: {{ .root.Values.nodeAgent.socketDir }}
    type: Directory
{{- end }}
- name: secrets
  emptyDir:
    medium: Memory
    sizeLimit: 16Mi
- name: tmp
  emptyDir:
    sizeLimit: {{ .tmpSize | default "64Mi" }}
{{- end -}}
{{- define "confidoc.launchMounts" -}}
- name: agent-socket
  mountPath: {{ .Values.nodeAgent.socketDir }}
  readOnly: true
- name: secrets
  mountPath: {{ include "confidoc.secretsDir" . }}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/* The rendered configuration files: their text is in a ConfigMap and their SHA-256 in the session. */}}
{{- define "confidoc.apiConf" -}}
{{- $s := printf "%s/api/api" (include "confidoc.secretsDir" .) -}}
# api.conf: confidoc-api in Kubernetes, rendered by the chart; its SHA-256 is
# in session api (an edit changes the session). Keys and certificates are in
# the launcher's memory-backed directory, never in a Secret.
listen_addr = 0.0.0.0
listen_port = {{ .Values.api.port }}
tls_cert = {{ $s }}/tls/server.crt
tls_key = {{ $s }}/tls/server.key
client_ca = {{ $s }}/tls/client-ca.crt
allowed_client_subjects = CN=confidoc-proxy;CN=confidoc-probe
trusted_proxy_subjects = CN=confidoc-proxy
master_key_file = {{ $s }}/master.keyring
db_host = {{ include "confidoc.dbHost" . }}
db_port = {{ include "confidoc.dbPort" . }}
db_name = confidoc
db_user = confidoc
{{- if eq .Values.mariadb.mode "external" }}
db_tls_ca = {{ include "confidoc.configDir" . }}/api/external-db-ca.crt
{{- else }}
db_tls_ca = {{ $s }}/db/ca.crt
{{- end }}
db_tls_cert = {{ $s }}/db/client.crt
db_tls_key = {{ $s }}/db/client.key
memcached_servers = {{ include "confidoc.memcachedServers" (dict "root" . "c" "memcached" "n" .Values.memcached.replicaCount) }}
lockout_memcached_servers = {{ include "confidoc.memcachedServers" (dict "root" . "c" "memcached-lockout" "n" .Values.memcached.lockout.replicaCount) }}
memcached_server_name = {{ include "confidoc.memcachedHost" . }}
memcached_tls_ca = {{ $s }}/mc/ca.crt
memcached_tls_cert = {{ $s }}/mc/client.crt
memcached_tls_key = {{ $s }}/mc/client.key
log_format = {{ .Values.global.logFormat }}
log_stream = {{ .Values.global.logStream }}
{{- if .Values.monitoring.metrics.enabled }}
# /metrics on a listener of its own: mutual TLS, the scraper's CA (a public
# certificate, from the ConfigMap); the server certificate is the API's.
metrics_listen_addr = 0.0.0.0
metrics_port = {{ .Values.monitoring.metrics.apiPort }}
metrics_tls_ca = {{ include "confidoc.configDir" . }}/api/metrics-client-ca.crt
{{- end }}
{{- range $k, $v := .Values.api.config }}
{{ $k }} = {{ $v }}
{{- end }}
{{ end -}}

{{- define "confidoc.migrateConf" -}}
{{- $s := printf "%s/migrate/migrate" (include "confidoc.secretsDir" .) -}}
# migrate.conf: confidoc-api --migrate (session migrate), rendered by the chart.
master_key_file = unused
log_format = {{ .Values.global.logFormat }}
log_stream = {{ .Values.global.logStream }}
db_host = {{ include "confidoc.dbHost" . }}
db_port = {{ include "confidoc.dbPort" . }}
db_name = confidoc
db_user = confidoc_migrate
{{- if eq .Values.mariadb.mode "external" }}
db_tls_ca = {{ include "confidoc.configDir" . }}/migrate/external-db-ca.crt
{{- else }}
db_tls_ca = {{ $s }}/db/ca.crt
{{- end }}
db_tls_cert = {{ $s }}/db/client.crt
db_tls_key = {{ $s }}/db/client.key
db_pool_size = 1
tls_cert = unused
tls_key = unused
client_ca = unused
{{ end -}}

{{/* The CAS's ${VAR}s for the sessions (deploy/policies + deploy/sessions). */}}
{{- define "confidoc.sessionVars" -}}
{{- $m := .Values.cas.measurements -}}
{{- $need := "is required (the SHA-256 of the image's program, from make images)" -}}
API_HOST={{ include "confidoc.apiHost" . }}
NGINX_HOST={{ include "confidoc.nginxHost" . }}
DB_HOST={{ include "confidoc.dbHost" . }}
MEMCACHED_HOST={{ include "confidoc.memcachedHost" . }}
API_USER={{ .Values.api.containerSecurityContext.runAsUser }}
MIGRATE_USER={{ .Values.api.migrate.runAsUser }}
DB_USER={{ .Values.mariadb.containerSecurityContext.runAsUser }}
MEMCACHED_USER={{ .Values.memcached.containerSecurityContext.runAsUser }}
NGINX_USER={{ .Values.nginx.containerSecurityContext.runAsUser }}
NGINX_MASTER_USER={{ .Values.nginx.containerSecurityContext.runAsUser }}
PROBE_USER={{ .Values.client.containerSecurityContext.runAsUser }}
OPERATOR_KEY_HASH={{ required "cas.adminKeyHash is required (confidoc-cas client-keygen prints it)" .Values.cas.adminKeyHash }}
STATE_DIR={{ include "confidoc.configDir" . }}
SECRETS_DIR={{ include "confidoc.secretsDir" . }}
API_EXE_SHA256={{ required (printf "cas.measurements.api %s" $need) $m.api }}
MARIADBD_EXE_SHA256={{ required (printf "cas.measurements.mariadbd %s" $need) $m.mariadbd }}
MEMCACHED_EXE_SHA256={{ required (printf "cas.measurements.memcached %s" $need) $m.memcached }}
NGINX_EXE_SHA256={{ required (printf "cas.measurements.nginx %s" $need) $m.nginx }}
CURL_EXE_SHA256={{ required (printf "cas.measurements.curl %s" $need) $m.curl }}
OPENSSL_EXE_SHA256={{ required (printf "cas.measurements.openssl %s" $need) $m.openssl }}
MARIADB_EXE_SHA256={{ required (printf "cas.measurements.mariadb %s" $need) $m.mariadb }}
MY_CNF_SHA256={{ include "confidoc.myCnf" . | sha256sum }}
API_CONF_SHA256={{ include "confidoc.apiConf" . | sha256sum }}
MIGRATE_CONF_SHA256={{ include "confidoc.migrateConf" . | sha256sum }}
NGINX_CONF_SHA256={{ include "confidoc.nginxConf" . | sha256sum }}
{{- end -}}

{{/* Probe timings shared by the services that wait for their release first. */}}
{{- define "confidoc.startupProbeTiming" -}}
periodSeconds: 5
failureThreshold: 60
{{- end -}}

{{/* The rendered CAS pin, or a failure: the components that need it are rendered only once it is set. */}}
{{- define "confidoc.pinSet" -}}
{{- if .Values.cas.pin }}true{{ end -}}
{{- end -}}

{{/* Where the client and the test pod find the CAS and nginx. */}}
{{- define "confidoc.clientEnv" -}}
- name: CAS_ADDR
  value: {{ printf "%s:%v" (include "confidoc.casHost" .) .Values.cas.port | quote }}
- name: CAS_PIN
  value: {{ .Values.cas.pin | quote }}
- name: NGINX_HOST
  value: {{ include "confidoc.nginxHost" . | quote }}
- name: NGINX_ADDR
  value: {{ printf "%s:%v" (include "confidoc.nginxSvcHost" .) .Values.nginx.service.port | quote }}
{{- end -}}
