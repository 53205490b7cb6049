# Sourced by every cf-access script: the environment that keeps Pulumi local
# and offline. Values already set by the caller win.
_cf_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Nothing may reach the internet: no update check, no plugin downloads.
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_SKIP_CONFIRMATIONS="${PULUMI_SKIP_CONFIRMATIONS:-false}"

# State: the local file backend inside the checkout (git-ignored) unless the
# team points PULUMI_BACKEND_URL at s3://, azblob://, gs:// or Pulumi Cloud.
# ?metadata=skip: the file backend then writes no `.attrs` sidecar files. Those are
# written in place (not atomically), so a concurrent reader or a killed CLI could see
# an empty one and fail with "failed to load checkpoint: EOF" (docs/operations.md).
export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$_cf_root/.state/backend?metadata=skip}"
case "$PULUMI_BACKEND_URL" in
  file://*) _cf_backend="${PULUMI_BACKEND_URL#file://}"; mkdir -p "${_cf_backend%%\?*}"; unset _cf_backend ;;
esac

# Secrets: the dev stack uses the passphrase provider with a well-known,
# non-secret passphrase (it only guards the sandbox's throwaway secret).
# Real stacks set PULUMI_CONFIG_PASSPHRASE(_FILE) or use a KMS provider.
if [ -z "${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
  export PULUMI_CONFIG_PASSPHRASE="cf-access-dev"
fi

# The Pulumi CLI chosen by scripts/bootstrap-pulumi.sh.
if [ -f "$_cf_root/.tools/pulumi-bin-dir" ]; then
  PATH="$(cat "$_cf_root/.tools/pulumi-bin-dir"):$PATH"
  export PATH
fi
unset _cf_root
