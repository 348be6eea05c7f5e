#!/usr/bin/env bash
# load.sh W K ADDRS: one load worker of tests/distributed/run.sh, run on the
# client host. Until W/load/stop exists it alternates a write (POST
# /documents/create_document of a new record of user loadK, content
# "doc ID of loadK") and a read (GET of its latest acknowledged write,
# content checked), through nginx (https://web.confidoc), at most about 4
# requests a second, from the source addresses of ADDRS (','-separated) in
# turn, one for each write and its read: the rate limiter's keys (client
# addresses) spread over both memcached. One line per request in W/load/wK.log:
#   PHASE W|R RECORD_ID STATUS MILLISECONDS
# STATUS is curl's HTTP code (000: no answer), or BAD for a read answered 200
# with another content.
set -u
W=$1 k=$2
IFS=, read -r -a addrs <<<"$3"
log=$W/load/w$k.log
ca=$W/client/nginx-ca.crt
last=""
i=0
ms() { date +%s%3N; }
while [ ! -e "$W/load/stop" ]; do
    phase=$(cat "$W/load/phase" 2>/dev/null || echo none)
    i=$((i + 1))
    id=$((k * 100000 + i))
    addr=${addrs[$((i % ${#addrs[@]}))]}
    t0=$(ms)
    st=$(curl -s -o /dev/null -w '%{http_code}' --max-time 15 --interface "$addr" --cacert "$ca" \
        -u "load$k:loadpass$k" -X POST -H 'Content-Type: application/json' \
        -d "{\"record_id\":\"$id\",\"content\":\"doc $id of load$k\"}" \
        https://web.confidoc/documents/create_document 2>/dev/null)
    echo "$phase W $id ${st:-000} $(($(ms) - t0))" >>"$log"
    case $st in 2*) last=$id ;; esac
    sleep 0.25
    if [ -n "$last" ]; then
        t0=$(ms)
        out=$(curl -s -w '\n%{http_code}' --max-time 15 --interface "$addr" --cacert "$ca" \
            -u "load$k:loadpass$k" "https://web.confidoc/documents/$last" 2>/dev/null)
        st=${out##*$'\n'}
        body=${out%$'\n'*}
        if [ "$st" = 200 ] && [ "$(jq -r .content <<<"$body" 2>/dev/null)" != "doc $last of load$k" ]; then
            st=BAD
        fi
        echo "$phase R $last ${st:-000} $(($(ms) - t0))" >>"$log"
        sleep 0.25
    fi
done
