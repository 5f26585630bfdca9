// Deployed at the gallery's resource group: lets the app identity read image versions
// (provisioning and replication state) before it asks Citrix to use them.
param appPrincipalId string

// Reader: read-only view of the gallery, its image definitions and versions.
var reader = 'acdd72a7-3d55-4a66-b4a2-2c1b5f6a8ad9'

resource galleryReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, appPrincipalId, reader)
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', reader)
  }
}
