<#
.SYNOPSIS
  Ask catalog-updater to update Citrix catalog(s) to a new image and wait for the outcome.
.DESCRIPTION
  POST /api/updates, then poll GET /api/updates/{instanceId} (honouring Retry-After) until the
  update reaches a terminal outcome. Same behaviour and exit codes as update-catalog.sh:
    0 succeeded / already_current
    1 failed / timed_out / cancelled / rejected
    2 usage, configuration or transport error (the update may still be running)
  The function key comes from -Key or $env:CATALOG_UPDATER_KEY, goes in the x-functions-key
  header and is never printed. Works on PowerShell 7+ (pwsh) and Windows PowerShell 5.1.
.EXAMPLE
  $env:CATALOG_UPDATER_KEY = '***'
  ./update-catalog.ps1 -Url https://func-xyz.azurewebsites.net -Catalog 'Win11 Pool' -Image 'win11-24h2-1.2.3'
.EXAMPLE
  ./update-catalog.ps1 -Url $env:CATALOG_UPDATER_URL -BodyFile request.json
#>
[CmdletBinding()]
param(
  [string]$Url = $env:CATALOG_UPDATER_URL,
  [string]$Key = $env:CATALOG_UPDATER_KEY,
  [string]$BodyFile,
  [string[]]$Catalog,
  [string]$Image,
  [Nullable[int]]$VdaUpdateDelay,
  [switch]$DryRun,
  [switch]$Force,
  [int]$TimeoutMinutes = 420,
  [int]$MaxIntervalSeconds = 60
)

$ErrorActionPreference = 'Stop'

function Stop-WithCode([int]$Code, [string]$Message) {
  if ($Code -eq 0) { Write-Host "update-catalog: $Message" } else { [Console]::Error.WriteLine("update-catalog: $Message") }
  exit $Code
}

function Get-ErrorText($Body) {
  if ($null -eq $Body) { return 'no details' }
  if ($Body.PSObject.Properties['error'] -and $Body.error) {
    $e = $Body.error
    if ($e.PSObject.Properties['reason']) {
      if ($e.PSObject.Properties['field'] -and $e.field) { return "$($e.field): $($e.reason)" }
      return [string]$e.reason
    }
    if ($e.PSObject.Properties['message']) { return "$($e.category): $($e.message)" }
  }
  return ($Body | ConvertTo-Json -Compress -Depth 5)
}

function Invoke-Api([string]$Method, [string]$Target, [string]$Json) {
  # Returns @{ Status; Body; RetryAfter }; Status 0 = transport error (Body = message).
  $headers = @{ 'Accept' = 'application/json' }
  if ($Key) { $headers['x-functions-key'] = $Key }
  $params = @{ Method = $Method; Uri = $Target; Headers = $headers; TimeoutSec = 60; UseBasicParsing = $true }
  if ($Json) { $params['Body'] = [Text.Encoding]::UTF8.GetBytes($Json); $params['ContentType'] = 'application/json' }
  try {
    $response = Invoke-WebRequest @params
    $status = [int]$response.StatusCode
    $content = $response.Content
    $retry = $response.Headers['Retry-After']
  } catch {
    $resp = $null
    if ($_.Exception.PSObject.Properties['Response']) { $resp = $_.Exception.Response }
    if ($null -eq $resp) { return @{ Status = 0; Body = $_.Exception.Message; RetryAfter = $null } }
    $status = [int]$resp.StatusCode
    $content = $null
    if ($_.ErrorDetails -and $_.ErrorDetails.Message) { $content = $_.ErrorDetails.Message }
    $retry = $null
    try { $retry = $resp.Headers['Retry-After'] } catch { $retry = $null }
  }
  if ($retry -is [array]) { $retry = $retry[0] }
  $body = $null
  if ($content) {
    if ($content -is [byte[]]) { $content = [Text.Encoding]::UTF8.GetString($content) }
    try { $body = $content | ConvertFrom-Json } catch { $body = $null }
  }
  return @{ Status = $status; Body = $body; RetryAfter = $retry }
}

function Format-Progress($o) {
  # phase, state, sub-state and progress of a status (or of one catalog's update), non-empty only
  $parts = @()
  foreach ($name in 'phase', 'state', 'subState') {
    if ($o.PSObject.Properties[$name] -and $o.$name) { $parts += [string]$o.$name }
  }
  if ($o.PSObject.Properties['progress'] -and $null -ne $o.progress) { $parts += "$($o.progress)%" }
  return ($parts -join ', ')
}

function Get-Pause($RetryAfter) {
  $seconds = 10
  if ($RetryAfter -and ([string]$RetryAfter) -match '^\d+$') { $seconds = [int]$RetryAfter }
  return [Math]::Min($seconds, $MaxIntervalSeconds)
}

if (-not $Url) { Stop-WithCode 2 'no URL: pass -Url or set CATALOG_UPDATER_URL' }
if ($Url -notmatch '^https://' -and $Url -notmatch '^http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?(/|$)') {
  Stop-WithCode 2 'the URL must start with https:// (http only for localhost)'
}
$Url = $Url.TrimEnd('/')
if ($MaxIntervalSeconds -lt 1) { Stop-WithCode 2 '-MaxIntervalSeconds must be positive' }
if (-not $Key) { [Console]::Error.WriteLine('update-catalog: no function key (CATALOG_UPDATER_KEY); Azure will answer 401') }

if ($BodyFile) {
  if ($Catalog -or $Image) { Stop-WithCode 2 '-BodyFile replaces -Catalog/-Image; give one or the other' }
  if (-not (Test-Path -LiteralPath $BodyFile)) { Stop-WithCode 2 "cannot read $BodyFile" }
  $json = Get-Content -LiteralPath $BodyFile -Raw
  try { $null = $json | ConvertFrom-Json } catch { Stop-WithCode 2 "$BodyFile is not valid JSON" }
} else {
  if (-not $Catalog) { Stop-WithCode 2 'give -Catalog (one or more) or -BodyFile' }
  if (-not $Image) { Stop-WithCode 2 'give -Image' }
  $request = [ordered]@{ image = $Image }
  if ($Catalog.Count -eq 1) { $request['catalog'] = $Catalog[0] } else { $request['catalogs'] = @($Catalog) }
  if ($null -ne $VdaUpdateDelay) { $request['vdaUpdateDelay'] = [int]$VdaUpdateDelay }
  if ($DryRun) { $request['dryRun'] = $true }
  if ($Force) { $request['force'] = $true }
  $json = $request | ConvertTo-Json -Compress -Depth 5
}

# 1. Submit.
$r = Invoke-Api 'POST' "$Url/api/updates" $json
switch ($r.Status) {
  0 { Stop-WithCode 2 "cannot reach ${Url}: $($r.Body)" }
  { $_ -in 200, 202 } { break }
  { $_ -in 400, 409, 413, 422 } { Stop-WithCode 1 "rejected (HTTP $($r.Status)): $(Get-ErrorText $r.Body)" }
  { $_ -in 401, 403 } { Stop-WithCode 2 "HTTP $($r.Status) from ${Url}: check the function key (CATALOG_UPDATER_KEY)" }
  404 { Stop-WithCode 2 "HTTP 404 from $Url/api/updates: is this the catalog-updater Function App?" }
  default { Stop-WithCode 2 "HTTP $($r.Status) from POST /api/updates: $(Get-ErrorText $r.Body)" }
}
if (-not $r.Body -or -not $r.Body.PSObject.Properties['instanceId'] -or -not $r.Body.instanceId) { Stop-WithCode 2 'the response has no instanceId' }
$instanceId = [string]$r.Body.instanceId
$note = ''
if ($r.Body.PSObject.Properties['duplicate'] -and $r.Body.duplicate) { $note = ' (an existing update for the same catalog and image)' }
Write-Host "update-catalog: accepted, instance $instanceId$note"

# 2. Wait. Poll our own base URL (never a host named in the response: the key must not leak).
$statusUrl = "$Url/api/updates/$([Uri]::EscapeDataString($instanceId))"
$deadline = (Get-Date).AddMinutes($TimeoutMinutes)
$failures = 0
$lastLine = ''
$pause = Get-Pause $r.RetryAfter
while ($true) {
  if ((Get-Date) -ge $deadline) { Stop-WithCode 2 "gave up waiting after $TimeoutMinutes minutes; the update continues: $statusUrl" }
  Start-Sleep -Seconds $pause
  $r = Invoke-Api 'GET' $statusUrl $null
  $s = $r.Status
  if ($s -eq 0 -or $s -eq 404 -or $s -eq 429 -or $s -ge 500) {
    $failures++
    if ($failures -ge 5) { Stop-WithCode 2 "status checks keep failing (HTTP $s): $(if ($s -eq 0) { $r.Body } else { Get-ErrorText $r.Body })" }
    [Console]::Error.WriteLine("update-catalog: status check failed (HTTP $s); retrying")
    $pause = if ($s -eq 0) { $MaxIntervalSeconds } else { Get-Pause $r.RetryAfter }
    continue
  }
  if ($s -in 401, 403) { Stop-WithCode 2 "HTTP $s while polling: check the function key" }
  if ($s -notin 200, 202) { Stop-WithCode 2 "HTTP $s from ${statusUrl}: $(Get-ErrorText $r.Body)" }
  $failures = 0
  $st = $r.Body
  $outcome = $null
  if ($st.PSObject.Properties['outcome']) { $outcome = $st.outcome }
  if (-not $outcome) {
    $line = 'running: ' + (Format-Progress $st)
    if ($st.PSObject.Properties['catalogUpdates']) {
      foreach ($cu in @($st.catalogUpdates)) { $line += "; $($cu.catalog): " + (Format-Progress $cu) }
    }
    if ($line -ne $lastLine) { Write-Host "update-catalog: $line" }
    $lastLine = $line
    $pause = Get-Pause $r.RetryAfter
    continue
  }
  $summary = @()
  if ($st.PSObject.Properties['results']) {
    foreach ($res in @($st.results)) {
      if ($null -eq $res) { continue }
      $name = 'catalog'
      if ($res.catalog) { foreach ($n in 'name', 'ref', 'id') { if ($res.catalog.PSObject.Properties[$n] -and $res.catalog.$n) { $name = $res.catalog.$n; break } } }
      $text = "  ${name}: $($res.outcome)"
      if ($res.PSObject.Properties['error'] -and $res.error -and $res.error.message) { $text += " - $($res.error.message)" }
      $summary += $text
    }
  }
  switch ($outcome) {
    { $_ -in 'succeeded', 'already_current' } {
      Write-Host "update-catalog: $outcome"
      $summary | ForEach-Object { Write-Host $_ }
      exit 0
    }
    { $_ -in 'failed', 'timed_out', 'cancelled', 'rejected' } {
      $detail = 'no details'
      if ($st.PSObject.Properties['error'] -and $st.error) {
        $detail = if ($st.error.category -and $st.error.category -ne $outcome) { "$($st.error.category): $($st.error.message)" } else { "$($st.error.message)" }
      }
      [Console]::Error.WriteLine("update-catalog: ${outcome}: $detail")
      $summary | ForEach-Object { [Console]::Error.WriteLine($_) }
      [Console]::Error.WriteLine("update-catalog: details: $statusUrl")
      exit 1
    }
    default { Stop-WithCode 2 "unknown outcome '$outcome' from $statusUrl" }
  }
}
