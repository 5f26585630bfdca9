// Event Grid: gallery image version written -> the app's Event Grid trigger function.
// Deployed into the GALLERY's resource group by scripts/postdeploy.* after the code is deployed
// (the subscription validates that the target function exists).
//   az deployment group create -g <gallery-rg> -f infra/eventgrid/main.bicep -p functionAppId=...
targetScope = 'resourceGroup'

@description('Resource id of the Function App (output AZURE_FUNCTION_APP_ID).')
param functionAppId string

@description('Name of the Event Grid trigger function in function_app.py.')
param functionName string = 'on_image_version_event'

@description('System topic name. Azure allows ONE system topic per source: if the gallery resource group already has one, pass its name (the hook does).')
param systemTopicName string = 'evgt-${uniqueString(resourceGroup().id)}-resources'

param eventSubscriptionName string = 'catalog-updater'

@description('Gallery name; empty = every gallery in this resource group.')
param galleryName string = ''

@description('Image definition name inside the gallery; empty = every image definition.')
param imageDefinitionName string = ''

@minValue(1)
@maxValue(30)
param maxDeliveryAttempts int = 30

@minValue(1)
@maxValue(1440)
param eventTimeToLiveInMinutes int = 1440

@description('Resource id of the storage account for undeliverable events; empty = no dead-lettering.')
param deadLetterStorageAccountId string = ''
param deadLetterContainerName string = 'eventgrid-deadletter'

var galleriesPrefix = '${resourceGroup().id}/providers/Microsoft.Compute/galleries/'
// Subject = resource id of the image version; Event Grid compares it case-insensitively.
var galleryPrefix = '${galleriesPrefix}${galleryName}/images/'
var imagePrefix = '${galleryPrefix}${imageDefinitionName}/versions/'
var subjectBeginsWith = empty(galleryName) ? galleriesPrefix : (empty(imageDefinitionName) ? galleryPrefix : imagePrefix)
var deadLettering = !empty(deadLetterStorageAccountId)
// Storage account id: /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{name}
var deadLetterParts = split(deadLetterStorageAccountId, '/')
var deadLetter = {
  identity: { type: 'SystemAssigned' }
  deadLetterDestination: {
    endpointType: 'StorageBlob'
    properties: {
      resourceId: deadLetterStorageAccountId
      blobContainerName: deadLetterContainerName
    }
  }
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: systemTopicName
  location: 'global'
  // The topic writes dead letters with its own identity (the storage account has shared keys off).
  identity: { type: 'SystemAssigned' }
  properties: {
    source: resourceGroup().id
    topicType: 'Microsoft.Resources.ResourceGroups'
  }
}

module deadLetterAccess 'deadletter-access.bicep' = if (deadLettering) {
  name: 'catalog-updater-deadletter-access'
  scope: resourceGroup(deadLettering ? deadLetterParts[2] : subscription().subscriptionId, deadLettering ? deadLetterParts[4] : resourceGroup().name)
  params: {
    storageAccountName: deadLettering ? last(deadLetterParts) : ''
    containerName: deadLetterContainerName
    principalId: systemTopic.identity.principalId
  }
}

resource eventSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: systemTopic
  name: eventSubscriptionName
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/${functionName}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      includedEventTypes: ['Microsoft.Resources.ResourceWriteSuccess']
      subjectBeginsWith: subjectBeginsWith
      isSubjectCaseSensitive: false
      enableAdvancedFilteringOnArrays: true
      advancedFilters: [
        {
          operatorType: 'StringIn'
          key: 'data.operationName'
          values: ['Microsoft.Compute/galleries/images/versions/write']
        }
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    deadLetterWithResourceIdentity: deadLettering ? deadLetter : null
  }
  dependsOn: [deadLetterAccess]
}

output systemTopicName string = systemTopic.name
output eventSubscriptionName string = eventSubscription.name
output subjectBeginsWith string = subjectBeginsWith
