#!/bin/sh
# The shell CronJob teams write instead of eso-recovery: curl on Vault's health, kubectl on the
# store's Ready condition, `kubectl rollout restart`. Same decision for the three paths the
# benchmark measures (sealed: exit early; healthy: exit early; degraded: restart).
set -eu
VAULT_ADDR=${VAULT_ADDR:-http://vault.security.svc.cluster.local:8200}
NAMESPACE=${NAMESPACE:-security}
STORES=${STORES:-k8s-secrets}
DEPLOYMENTS=${DEPLOYMENTS:-external-secrets external-secrets-webhook external-secrets-cert-controller}

code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$VAULT_ADDR/v1/sys/health" || true)
if [ "$code" != "200" ]; then
  echo "vault not ready (HTTP $code)"
  exit 0
fi

# One kubectl for all stores; any Ready=False means degraded.
ready=$(kubectl get clustersecretstore $STORES \
  -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}{.status.conditions[?(@.type=="Ready")].status}')
case "$ready" in
  *False*) ;;
  *) echo "store healthy"; exit 0 ;;
esac

echo "vault ready, store degraded: restarting"
kubectl -n "$NAMESPACE" rollout restart deployment $DEPLOYMENTS
