// Flex Consumption plan + Python 3.11 Function App running as the user-assigned identity.
// Every app setting the code reads (shared/config.py SETTING_NAMES) is set in `codeSettings`;
// tests/infra/test_infra_settings.py checks this. No secret is an app setting: the Citrix API
// client lives in Key Vault and the code reads it with the managed identity.
param name string
param planName string
param location string
param tags object = {}
param identityId string
param identityClientId string
param storageBlobEndpoint string
param storageQueueEndpoint string
param storageTableEndpoint string
param deploymentContainerName string
param applicationInsightsConnectionString string
param keyVaultUri string
param citrixApiBase string
param citrixCustomerId string
param citrixSiteId string
@description('EVENT_ROUTES: JSON array string (image -> catalogs routing for Event Grid events).')
param eventRoutes string
param maximumInstanceCount int = 40
@allowed([2048, 4096])
param instanceMemoryMB int = 2048

// The Event Grid trigger function in function_app.py (scripts/postdeploy.* subscribe it).
var eventGridFunctionName = 'on_image_version_event'

// Functions host settings: identity-based AzureWebJobsStorage (no connection string, no key).
// Durable Functions uses the same connection; it needs blobs, queues and tables.
var hostSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AzureWebJobsStorage__blobServiceUri: storageBlobEndpoint
  AzureWebJobsStorage__queueServiceUri: storageQueueEndpoint
  AzureWebJobsStorage__tableServiceUri: storageTableEndpoint
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
  // App Insights has local auth off: telemetry is sent with the app identity.
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

// Settings read by the code (shared/config.py). Values not taken from parameters are the
// defaults of shared.config.Settings, written out so operators can see and change them.
var codeSettings = {
  CITRIX_API_BASE: citrixApiBase
  CITRIX_CUSTOMER_ID: citrixCustomerId
  CITRIX_SITE_ID: citrixSiteId
  KEY_VAULT_URL: keyVaultUri
  AZURE_CLIENT_ID: identityClientId
  // Names of the Key Vault secrets (never their values).
  CITRIX_CLIENT_ID_SECRET_NAME: 'citrix-client-id'
  CITRIX_CLIENT_SECRET_SECRET_NAME: 'citrix-client-secret'
  CITRIX_CUSTOMER_ID_SECRET_NAME: ''
  SECRET_CACHE_TTL_SECONDS: '300'
  CITRIX_TOKEN_SAFETY_MARGIN_SECONDS: '300'
  CITRIX_HTTP_TIMEOUT_SECONDS: '30'
  CITRIX_RETRY_BUDGET_SECONDS: '120'
  CITRIX_MAX_REQUESTS_PER_SECOND: '8'
  DEFAULT_VDA_UPDATE_DELAY_MINUTES: '-1'
  POLL_MIN_INTERVAL_SECONDS: '30'
  POLL_MAX_INTERVAL_SECONDS: '600'
  UPDATE_DEADLINE_MINUTES: '360'
  BUSY_CATALOG_WAIT_MINUTES: '120'
  IMAGE_READY_WAIT_MINUTES: '60'
  POLLS_PER_EXECUTION: '40'
  MAX_CONSECUTIVE_POLL_FAILURES: '5'
  MAX_PARALLEL_CATALOGS: '5'
  EVENT_ROUTES: eventRoutes
  MAX_REQUEST_BODY_BYTES: '65536'
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225:Zone redundancy on Flex Consumption exists only in some regions and would make the default deployment fail elsewhere; a zone outage delays updates (Durable state is in storage), it does not lose them.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  properties: { reserved: true }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222:Event Grid push delivery and CI/CD pipelines (hosted agents) must reach the app; every route needs a function key over HTTPS. Private networking is the documented next step.
  // checkov:skip=CKV_AZURE_17:Client certificates would break Event Grid delivery and the pipeline scripts, which authenticate with function keys.
  // checkov:skip=CKV_AZURE_212:Flex Consumption has no minimum instance count; instances start on demand and Durable resumes work from storage.
  // checkov:skip=CKV_AZURE_213:App Service health check pings without a function key, and /api/health requires one; Flex Consumption replaces unhealthy instances by itself.
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      remoteDebuggingEnabled: false
      cors: { allowedOrigins: [] }
      appSettings: [for setting in items(union(hostSettings, codeSettings)): { name: setting.key, value: setting.value }]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: { name: 'python', version: '3.11' }
    }
  }
}

// No basic (publishing-profile) credentials: deployments authenticate with Entra ID.
resource ftpPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: { allow: false }
}

resource scmPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: { allow: false }
}

output id string = site.id
output name string = site.name
output url string = 'https://${site.properties.defaultHostName}'
output eventGridFunctionName string = eventGridFunctionName
