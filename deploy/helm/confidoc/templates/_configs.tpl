{{/*
_configs.tpl: the services' configuration, rendered from the same templates
that make up fills in (deploy/nginx/nginx.conf.in, deploy/mariadb/my.cnf.in,
deploy/memcached/memcached.conf.in, linked under files/), with the
Kubernetes addresses and paths. Each text goes into a ConfigMap and its
SHA-256 into the session, so the CAS releases keys only to a service that
runs exactly this configuration.
*/}}

{{- define "confidoc.nginxConf" -}}
{{- $t := .Files.Get "files/nginx/nginx.conf.in" -}}
{{- $tls := printf "%s/nginx/nginx/tls" (include "confidoc.secretsDir" .) -}}
{{- $maxBody := index .Values.api.config "max_body_bytes" | default 16777216 -}}
{{- $t = $t | replace "@USER_DIRECTIVE@" "# (no user directive: the pod runs as one unprivileged uid)" -}}
{{- $t = $t | replace "@NGINX_DIR@/tmp" "/tmp" | replace "@NGINX_DIR@" "/tmp" -}}
{{- $t = $t | replace "@LOG_DIR@/nginx-access.log" "/dev/stdout" -}}
{{- $t = $t | replace "127.0.0.1:@HTTPS_PORT@" (toString .Values.nginx.containerPort) -}}
{{- $t = $t | replace "127.0.0.1:@API_PORT@" (printf "%s:%v" (include "confidoc.apiHost" .) .Values.api.port) -}}
{{- $t = $t | replace "@API_HOST@" (include "confidoc.apiHost" .) -}}
{{- $t = $t | replace "@MAX_BODY_BYTES@" (toString $maxBody) -}}
{{- $t = $t | replace "@TLS_DIR@" $tls -}}
{{- /* One worker per pod (make up's CONFIDOC_NGINX_WORKERS, default auto, counts the host's cores, not the pod's share): nginx scales by replicas. */ -}}
{{- $t = $t | replace "@NGINX_WORKERS@" "1" -}}
{{- /* The web application and docs/openapi.json, which the nginx image carries (make up copies them into STATE/nginx/www). */ -}}
{{- $t = $t | replace "@WWW_DIR@" "/usr/share/confidoc/www" -}}
{{- $t -}}
{{- end -}}

{{- define "confidoc.galeraPeers" -}}
{{- $name := include "confidoc.component" (dict "root" . "c" "mariadb") -}}
{{- $hl := printf "%s-headless" $name -}}
{{- $domain := include "confidoc.svcDomain" . -}}
{{- $out := list -}}
{{- range $i := until (int .Values.mariadb.galera.replicaCount) -}}
{{- $out = append $out (printf "%s-%d.%s.%s" $name $i $hl $domain) -}}
{{- end -}}
{{- join "," $out -}}
{{- end -}}

{{- define "confidoc.myCnf" -}}
{{- $t := .Files.Get "files/mariadb/my.cnf.in" -}}
{{- $sec := printf "%s/mariadb" (include "confidoc.secretsDir" .) -}}
{{- $tls := printf "%s/mariadb/tls" $sec -}}
{{- $t = $t | replace "@USER_LINE@" "# (no user line: the pod runs as the mysql uid)" -}}
{{- $t = $t | replace "@DB_DIR@/data" "/var/lib/mysql/data" | replace "@DB_DIR@/tmp" "/tmp" -}}
{{- $t = $t | replace "@DB_DIR@/run" "/run/mariadb" -}}
{{- $t = $t | replace "@DB_PORT@" (toString .Values.mariadb.port) -}}
{{- $t = $t | replace "bind-address=127.0.0.1" "bind-address=0.0.0.0" -}}
{{- $t = $t | replace "@TLS_DIR@" $tls | replace "@KEY_DIR@" (printf "%s/mariadb-key" $sec) -}}
{{- $t = $t | replace "innodb_buffer_pool_size=256M" (printf "innodb_buffer_pool_size=%s" .Values.mariadb.bufferPoolSize) -}}
{{- $t }}
# Kubernetes (the chart): every API replica opens its whole pool at start.
max_connections={{ .Values.mariadb.maxConnections }}
{{- if ne .Values.mariadb.mode "galera" }}
# Kubernetes (the chart): the database and the two certificate-authenticated
# accounts, created at every start (idempotent); the API's pods connect from
# their pod addresses, fenced by the NetworkPolicy.
init_file={{ include "confidoc.configDir" . }}/mariadb/init.sql
{{- else }}
# Kubernetes (the chart): no init_file with Galera, whose nodes start outside
# a primary component, where DDL is refused; the accounts (init.sql) are
# created once after the bootstrap and replicate (NOTES.txt).

# Galera: every node has this same file; each announces its pod address
# (wsrep_node_address is found from its interface) for IST (4568) and SST
# (4444) to its donor. The nodes start in a non-primary
# component (pc.wait_prim=no) and find each other through the headless
# Service; the first install bootstraps once with pc.bootstrap=YES (NOTES);
# after a full stop pc.recovery restores the primary component by itself.
[galera]
wsrep_on=ON
wsrep_provider=/usr/lib/galera/libgalera_smm.so
wsrep_cluster_name={{ .Values.mariadb.galera.clusterName }}
wsrep_cluster_address=gcomm://{{ include "confidoc.galeraPeers" . }}
wsrep_provider_options="gmcast.listen_addr=tcp://0.0.0.0:4567;socket.ssl=yes;socket.ssl_cert={{ $tls }}/server.crt;socket.ssl_key={{ $tls }}/server.key;socket.ssl_ca={{ $tls }}/ca.crt;pc.wait_prim=no;pc.recovery=TRUE"
wsrep_sst_method=mariabackup
# mariabackup connects to the donor over its unix socket as the mysql uid
# (unix_socket authentication): no password anywhere.
wsrep_sst_auth=mysql:
binlog_format=ROW
default_storage_engine=InnoDB
innodb_autoinc_lock_mode=2

[sst]
# SST streams over TLS with the same server certificate, checked against the CA.
ssl-mode=VERIFY_CA
{{- end }}
{{ end -}}

{{- define "confidoc.initSql" -}}
-- init.sql: the database and the API's two accounts. Standalone: MariaDB runs
-- it at every start (init_file); Galera: once, by hand, after the bootstrap
-- (NOTES.txt). No password: each account authenticates by its client
-- certificate (subject and issuer).
CREATE DATABASE IF NOT EXISTS confidoc;
CREATE USER IF NOT EXISTS 'confidoc'@'%' REQUIRE SUBJECT '/CN=confidoc-api-db' AND ISSUER '/CN=confidoc MariaDB CA';
GRANT SELECT, INSERT, UPDATE, DELETE ON confidoc.* TO 'confidoc'@'%';
GRANT CREATE ON confidoc.schema_migrations TO 'confidoc'@'%';
CREATE USER IF NOT EXISTS 'confidoc_migrate'@'%' REQUIRE SUBJECT '/CN=confidoc-api-migrate' AND ISSUER '/CN=confidoc MariaDB CA';
GRANT ALL PRIVILEGES ON confidoc.* TO 'confidoc_migrate'@'%';
{{ end -}}

{{/*
The bootstrap wrapper of mariadb-install-db (MYSQLD_BOOTSTRAP), as make up
does: its bootstrap mariadbd gets the TLS files and the at-rest key through
the launcher too.
*/}}
{{- define "confidoc.mariadbBootstrap" -}}
#!/bin/sh
exec /usr/bin/confidoc-cas run --session mariadb --socket {{ .Values.nodeAgent.socketDir }}/agent.sock --fallback-dir {{ include "confidoc.secretsDir" . }}/mariadb -- /usr/sbin/mariadbd "$@"
{{ end -}}

{{/* memcached's arguments from memcached.conf.in, one list item each: (dict "root" $ "inst" "memcached" "mb" 64) */}}
{{- define "confidoc.memcachedArgs" -}}
{{- $t := .root.Files.Get "files/memcached/memcached.conf.in" -}}
{{- $t = $t | replace "-l 127.0.0.1" "-l 0.0.0.0" -}}
{{- $t = $t | replace "@MEMCACHED_PORT@" (toString .root.Values.memcached.port) -}}
{{- $t = $t | replace "@MEMCACHED_MB@" (toString .mb) -}}
{{- $t = $t | replace "@TLS_DIR@" (printf "%s/memcached/%s/tls" (include "confidoc.secretsDir" .root) .inst) -}}
{{- range $line := splitList "\n" $t }}
{{- if and $line (not (hasPrefix "#" $line)) }}
{{- range $arg := regexSplit " " $line 2 }}
- {{ $arg | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The sessions the CAS creates at its first start: deploy/policies/NAME.yaml then deploy/sessions/NAME.yaml, as make up composes them. */}}
{{- define "confidoc.sessionNames" -}}mariadb memcached migrate api nginx probe{{- end -}}
