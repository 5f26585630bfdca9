#!/bin/sh
# azd postdeploy hook: subscribe the deployed Event Grid trigger function to "image version
# written" events of the gallery's resource group. The subscription can only be created once the
# function exists, hence after `azd deploy`. Safe to run again (same names -> same resources).
#
# Reads azd environment values (main.bicep outputs + `azd env set`):
#   GALLERY_RESOURCE_GROUP (empty = skip: pipelines only), GALLERY_NAME, GALLERY_IMAGE_DEFINITION,
#   AZURE_FUNCTION_APP_ID, AZURE_STORAGE_ACCOUNT_ID, AZURE_DEADLETTER_CONTAINER,
#   AZURE_KEY_VAULT_NAME, AZURE_SUBSCRIPTION_ID, EVENTGRID_DEADLETTER (default true).
set -eu

here="$(cd "$(dirname "$0")" && pwd)"
template="$here/../infra/eventgrid/main.bicep"

remind_secrets() {
  vault="${AZURE_KEY_VAULT_NAME:-}"
  [ -n "$vault" ] || return 0
  names="$(az keyvault secret list --vault-name "$vault" --query "[].name" -o tsv 2>/dev/null || true)"
  for secret in citrix-client-id citrix-client-secret; do
    if ! printf '%s\n' "$names" | grep -qx "$secret"; then
      echo "postdeploy: put the Citrix API client into Key Vault '$vault' (secret '$secret' not found or not listable):"
      echo "  az keyvault secret set --vault-name $vault --name $secret --file <file-holding-the-value>"
    fi
  done
}

if [ -z "${GALLERY_RESOURCE_GROUP:-}" ]; then
  echo "postdeploy: GALLERY_RESOURCE_GROUP is not set; no Event Grid subscription (pipelines can still call POST /api/updates)."
  echo "postdeploy: to react to new gallery image versions: azd env set GALLERY_RESOURCE_GROUP <rg> && azd hooks run postdeploy"
  remind_secrets
  exit 0
fi

: "${AZURE_FUNCTION_APP_ID:?run azd provision first (AZURE_FUNCTION_APP_ID missing)}"
subscription_args=""
if [ -n "${AZURE_SUBSCRIPTION_ID:-}" ]; then subscription_args="--subscription $AZURE_SUBSCRIPTION_ID"; fi

# Azure allows one system topic per source: reuse the gallery resource group's topic if it has one.
# shellcheck disable=SC2086
existing="$(az eventgrid system-topic list -g "$GALLERY_RESOURCE_GROUP" $subscription_args \
  --query "[?topicType=='Microsoft.Resources.ResourceGroups'].name | [0]" -o tsv 2>/dev/null || true)"

deadletter_id=""
if [ "${EVENTGRID_DEADLETTER:-true}" = "true" ]; then deadletter_id="${AZURE_STORAGE_ACCOUNT_ID:-}"; fi

set -- functionAppId="$AZURE_FUNCTION_APP_ID" \
  galleryName="${GALLERY_NAME:-}" \
  imageDefinitionName="${GALLERY_IMAGE_DEFINITION:-}" \
  deadLetterStorageAccountId="$deadletter_id" \
  deadLetterContainerName="${AZURE_DEADLETTER_CONTAINER:-eventgrid-deadletter}"
if [ -n "$existing" ]; then
  echo "postdeploy: reusing system topic '$existing' in $GALLERY_RESOURCE_GROUP"
  set -- "$@" systemTopicName="$existing"
fi

echo "postdeploy: subscribing ${AZURE_FUNCTION_APP_NAME:-the function app} to image version events in $GALLERY_RESOURCE_GROUP"
# shellcheck disable=SC2086
az deployment group create $subscription_args \
  --resource-group "$GALLERY_RESOURCE_GROUP" \
  --name catalog-updater-eventgrid \
  --template-file "$template" \
  --parameters "$@" \
  --query "properties.outputs" -o json

remind_secrets
echo "postdeploy: done. Portal: resource group ${AZURE_RESOURCE_GROUP:-} > workbook 'Catalog updates'."
