# azd postdeploy hook (Windows): same as postdeploy.sh. Subscribes the deployed Event Grid trigger
# function to "image version written" events of the gallery's resource group. Safe to run again.
$ErrorActionPreference = 'Stop'
$template = Join-Path $PSScriptRoot '..' 'infra' 'eventgrid' 'main.bicep'

function Write-SecretReminder {
  $vault = $env:AZURE_KEY_VAULT_NAME
  if (-not $vault) { return }
  $names = @()
  try { $names = @(az keyvault secret list --vault-name $vault --query '[].name' -o tsv 2>$null) } catch { $names = @() }
  foreach ($secret in 'citrix-client-id', 'citrix-client-secret') {
    if ($names -notcontains $secret) {
      Write-Host "postdeploy: put the Citrix API client into Key Vault '$vault' (secret '$secret' not found or not listable):"
      Write-Host "  az keyvault secret set --vault-name $vault --name $secret --file <file-holding-the-value>"
    }
  }
}

if (-not $env:GALLERY_RESOURCE_GROUP) {
  Write-Host 'postdeploy: GALLERY_RESOURCE_GROUP is not set; no Event Grid subscription (pipelines can still call POST /api/updates).'
  Write-Host 'postdeploy: to react to new gallery image versions: azd env set GALLERY_RESOURCE_GROUP <rg>; azd hooks run postdeploy'
  Write-SecretReminder
  exit 0
}
if (-not $env:AZURE_FUNCTION_APP_ID) { throw 'run azd provision first (AZURE_FUNCTION_APP_ID missing)' }

$sub = @()
if ($env:AZURE_SUBSCRIPTION_ID) { $sub = @('--subscription', $env:AZURE_SUBSCRIPTION_ID) }

# Azure allows one system topic per source: reuse the gallery resource group's topic if it has one.
$existing = az eventgrid system-topic list -g $env:GALLERY_RESOURCE_GROUP @sub `
  --query "[?topicType=='Microsoft.Resources.ResourceGroups'].name | [0]" -o tsv 2>$null

$deadLetterId = ''
if (($env:EVENTGRID_DEADLETTER ?? 'true') -eq 'true') { $deadLetterId = "$env:AZURE_STORAGE_ACCOUNT_ID" }
$container = if ($env:AZURE_DEADLETTER_CONTAINER) { $env:AZURE_DEADLETTER_CONTAINER } else { 'eventgrid-deadletter' }

$parameters = @(
  "functionAppId=$env:AZURE_FUNCTION_APP_ID",
  "galleryName=$env:GALLERY_NAME",
  "imageDefinitionName=$env:GALLERY_IMAGE_DEFINITION",
  "deadLetterStorageAccountId=$deadLetterId",
  "deadLetterContainerName=$container"
)
if ($existing) {
  Write-Host "postdeploy: reusing system topic '$existing' in $env:GALLERY_RESOURCE_GROUP"
  $parameters += "systemTopicName=$existing"
}

Write-Host "postdeploy: subscribing the function app to image version events in $env:GALLERY_RESOURCE_GROUP"
az deployment group create @sub --resource-group $env:GALLERY_RESOURCE_GROUP --name catalog-updater-eventgrid `
  --template-file $template --parameters @parameters --query 'properties.outputs' -o json
if ($LASTEXITCODE -ne 0) { throw "az deployment group create failed ($LASTEXITCODE)" }

Write-SecretReminder
Write-Host "postdeploy: done. Portal: resource group $env:AZURE_RESOURCE_GROUP > workbook 'Catalog updates'."
