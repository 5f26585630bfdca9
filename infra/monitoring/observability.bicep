// Portal monitoring built on the app's structured logs (shared/telemetry.py):
// an Azure Monitor workbook and a log alert on failed or timed-out updates.
// The KQL lives in queries/*.kql; tests/infra/test_infra_workbook.py checks that every field the
// queries read is one the code logs (shared.telemetry.EVENT_FIELDS).
param location string
param tags object = {}
param applicationInsightsId string
param workbookDisplayName string
param alertName string
param actionGroupName string
@description('E-mail for the alert; empty = the alert fires without notifying anyone.')
param alertEmail string = ''

var timeContext = { durationMs: 0 }
var logsQuery = {
  version: 'KqlItem/1.0'
  queryType: 0
  resourceType: 'microsoft.insights/components'
  timeContext: timeContext
  timeContextFromParameter: 'TimeRange'
}

var workbookContent = {
  version: 'Notebook/1.0'
  items: [
    {
      type: 1
      name: 'intro'
      content: {
        json: '## Citrix catalog updates\nEvery update the catalog-updater runs, from its structured logs (`catalog-updater <event> <json>` traces). Filter by catalog name, or leave empty for all. Durable instance details: Function App > Durable Functions, or `GET /api/updates/{instanceId}`.'
      }
    }
    {
      type: 9
      name: 'parameters'
      content: {
        version: 'KqlParameterItem/1.0'
        style: 'pills'
        queryType: 0
        resourceType: 'microsoft.insights/components'
        parameters: [
          {
            id: 'b1f0c7a4-1d2e-4c55-9d39-6a1f3c0e0a01'
            version: 'KqlParameterItem/1.0'
            name: 'TimeRange'
            label: 'Time range'
            type: 4
            isRequired: true
            value: { durationMs: 604800000 }
            typeSettings: {
              selectableValues: [
                { durationMs: 3600000 }
                { durationMs: 86400000 }
                { durationMs: 604800000 }
                { durationMs: 2592000000 }
              ]
              allowCustom: true
            }
          }
          {
            id: 'b1f0c7a4-1d2e-4c55-9d39-6a1f3c0e0a02'
            version: 'KqlParameterItem/1.0'
            name: 'Catalog'
            label: 'Catalog name'
            type: 1
            isRequired: false
            value: ''
          }
        ]
      }
    }
    {
      type: 3
      name: 'updates-over-time'
      content: union(logsQuery, {
        title: 'Updates started and finished, by outcome'
        query: loadTextContent('queries/updates-over-time.kql')
        visualization: 'timechart'
        size: 0
      })
    }
    {
      type: 3
      name: 'updates-per-catalog'
      content: union(logsQuery, {
        title: 'Updates per catalog'
        query: loadTextContent('queries/updates-per-catalog.kql')
        visualization: 'table'
        size: 0
      })
    }
    {
      type: 3
      name: 'updates-in-flight'
      content: union(logsQuery, {
        title: 'Updates in flight (no terminal event yet)'
        query: loadTextContent('queries/updates-in-flight.kql')
        visualization: 'table'
        size: 0
      })
    }
    {
      type: 3
      name: 'update-durations'
      content: union(logsQuery, {
        title: 'Update durations'
        query: loadTextContent('queries/update-durations.kql')
        visualization: 'table'
        size: 0
      })
    }
    {
      type: 3
      name: 'update-failures'
      content: union(logsQuery, {
        title: 'Failed, timed-out, cancelled and rejected updates'
        query: loadTextContent('queries/update-failures.kql')
        visualization: 'table'
        size: 0
      })
    }
    {
      type: 3
      name: 'ignored-events'
      content: union(logsQuery, {
        title: 'Event Grid events that started nothing'
        query: loadTextContent('queries/ignored-events.kql')
        visualization: 'table'
        size: 1
      })
    }
  ]
  fallbackResourceIds: [applicationInsightsId]
  '$schema': 'https://github.com/Microsoft/Application-Insights-Workbooks/blob/master/schema/workbook.json'
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // Workbook names must be GUIDs; this one is stable per App Insights resource (idempotent).
  name: guid(applicationInsightsId, 'catalog-updater-workbook')
  location: location
  tags: union(tags, { 'hidden-title': workbookDisplayName })
  kind: 'shared'
  properties: {
    displayName: workbookDisplayName
    category: 'workbook'
    sourceId: applicationInsightsId
    serializedData: string(workbookContent)
  }
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: actionGroupName
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'catupdater'
    enabled: true
    emailReceivers: [
      { name: 'operator', emailAddress: alertEmail, useCommonAlertSchema: true }
    ]
  }
}

resource failedUpdatesAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: alertName
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'catalog-updater: update failed or timed out'
    description: 'A Citrix catalog image update ended with outcome failed or timed_out. See the workbook "${workbookDisplayName}" for the error category, message and Citrix transaction id.'
    severity: 2
    enabled: true
    scopes: [applicationInsightsId]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: loadTextContent('queries/alert-failed-updates.kql')
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          // One alert per catalog that failed in the window.
          dimensions: [
            { name: 'Catalog', operator: 'Include', values: ['*'] }
          ]
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    autoMitigate: false
    actions: {
      actionGroups: empty(alertEmail) ? [] : [actionGroup.id]
    }
  }
}

output workbookId string = workbook.id
output alertId string = failedUpdatesAlert.id
