// Key Vault for the Citrix API client (secrets citrix-client-id / citrix-client-secret):
// RBAC authorization (no access policies), soft delete and purge protection on.
param name string
param location string
param tags object = {}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109:Without VNet integration the Flex Consumption app has no fixed outbound address to allow; access is Entra-only (RBAC) and least-privilege (Secrets User for the app identity).
  // checkov:skip=CKV_AZURE_189:Same reason: the app reaches the vault over its public endpoint until private networking is added.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
