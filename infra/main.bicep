// catalog-updater: everything one `azd up` (or `az deployment sub create`) needs in a subscription.
// Resource group -> identity, storage, Key Vault, monitoring, Flex Consumption Function App,
// role assignments, workbook and alert. The Event Grid subscription is created after the code is
// deployed (scripts/postdeploy.*, infra/eventgrid/main.bicep), because its target function must exist.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; used to name the resource group and derive unique names.')
param environmentName string

@minLength(1)
@description('Azure region for every resource (must offer Flex Consumption).')
param location string

@description('Object id of the user or service principal running the deployment. When set, it may write the Citrix client secrets into the vault (Key Vault Secrets Officer).')
param principalId string = ''

@description('Citrix Cloud API region preset (us, eu, ap-s, jp) or an https:// base URL. App setting CITRIX_API_BASE.')
param citrixApiBase string = 'us'

@description('Citrix Cloud customer id (not a secret). App setting CITRIX_CUSTOMER_ID.')
param citrixCustomerId string = ''

@description('Citrix site id; empty = the app looks it up. App setting CITRIX_SITE_ID.')
param citrixSiteId string = ''

@description('EVENT_ROUTES as a JSON array string. Empty = the content of infra/routes.json.')
param eventRoutesJson string = ''

@description('Resource group that holds the Azure Compute Gallery. When set, the app identity gets Reader on it (to check image versions before updating Citrix).')
param galleryResourceGroupName string = ''

@description('E-mail address for the failed-update alert; empty = alert without notification.')
param alertEmail string = ''

@description('Upper bound of Flex Consumption instances (the Citrix API is the bottleneck, not compute).')
param maximumInstanceCount int = 40

@description('Optional name overrides; empty = abbreviation + unique token.')
param resourceGroupName string = ''
param functionAppName string = ''
param storageAccountName string = ''
param keyVaultName string = ''
param identityName string = ''
param logAnalyticsName string = ''
param applicationInsightsName string = ''

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName, application: 'catalog-updater' }
var appName = !empty(functionAppName) ? functionAppName : '${abbrs.functionApp}${resourceToken}'
// The deployment package container; azd/zip deploy upload here through the app identity.
var deploymentContainerName = 'app-package-${take(resourceToken, 7)}'
var deadLetterContainerName = 'eventgrid-deadletter'
var eventRoutes = empty(eventRoutesJson) ? string(loadJsonContent('routes.json')) : eventRoutesJson

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : '${abbrs.resourceGroup}${environmentName}'
  location: location
  tags: tags
}

module identity 'core/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: !empty(identityName) ? identityName : '${abbrs.managedIdentity}${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'core/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: !empty(logAnalyticsName) ? logAnalyticsName : '${abbrs.logAnalytics}${resourceToken}'
    applicationInsightsName: !empty(applicationInsightsName) ? applicationInsightsName : '${abbrs.appInsights}${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'core/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: !empty(storageAccountName) ? storageAccountName : '${abbrs.storageAccount}${resourceToken}'
    location: location
    tags: tags
    containerNames: [deploymentContainerName, deadLetterContainerName]
  }
}

module keyVault 'core/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: !empty(keyVaultName) ? keyVaultName : '${abbrs.keyVault}${resourceToken}'
    location: location
    tags: tags
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    appPrincipalId: identity.outputs.principalId
    deployerPrincipalId: principalId
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

module galleryReader 'app/gallery-reader.bicep' = if (!empty(galleryResourceGroupName)) {
  name: 'gallery-reader'
  scope: resourceGroup(empty(galleryResourceGroupName) ? rg.name : galleryResourceGroupName)
  params: {
    appPrincipalId: identity.outputs.principalId
  }
}

module functionApp 'app/function.bicep' = {
  name: 'function'
  scope: rg
  params: {
    name: appName
    planName: '${abbrs.servicePlan}${resourceToken}'
    location: location
    tags: union(tags, { 'azd-service-name': 'api' })
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageBlobEndpoint: storage.outputs.primaryEndpoints.blob
    storageQueueEndpoint: storage.outputs.primaryEndpoints.queue
    storageTableEndpoint: storage.outputs.primaryEndpoints.table
    deploymentContainerName: deploymentContainerName
    applicationInsightsConnectionString: monitoring.outputs.applicationInsightsConnectionString
    keyVaultUri: keyVault.outputs.uri
    citrixApiBase: citrixApiBase
    citrixCustomerId: citrixCustomerId
    citrixSiteId: citrixSiteId
    eventRoutes: eventRoutes
    maximumInstanceCount: maximumInstanceCount
  }
  // The host must be able to reach its storage and vault as soon as it starts.
  dependsOn: [rbac]
}

module observability 'monitoring/observability.bicep' = {
  name: 'observability'
  scope: rg
  params: {
    location: location
    tags: tags
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    workbookDisplayName: 'Catalog updates (${environmentName})'
    alertName: '${abbrs.alertRule}failed-updates-${resourceToken}'
    actionGroupName: '${abbrs.actionGroup}${resourceToken}'
    alertEmail: alertEmail
  }
}

// Outputs: azd stores them in .azure/<env>/.env; scripts/postdeploy.* and docs/deploy.md use them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_ID string = functionApp.outputs.id
output AZURE_FUNCTION_URL string = functionApp.outputs.url
output AZURE_EVENT_GRID_FUNCTION_NAME string = functionApp.outputs.eventGridFunctionName
output AZURE_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_URL string = keyVault.outputs.uri
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_STORAGE_ACCOUNT_ID string = storage.outputs.id
output AZURE_DEADLETTER_CONTAINER string = deadLetterContainerName
output AZURE_APPLICATION_INSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output AZURE_LOG_ANALYTICS_WORKSPACE_ID string = monitoring.outputs.logAnalyticsId
output AZURE_WORKBOOK_ID string = observability.outputs.workbookId
output GALLERY_RESOURCE_GROUP string = galleryResourceGroupName
