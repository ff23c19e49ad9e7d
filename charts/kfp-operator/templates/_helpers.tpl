{{/*
Names. One release per cluster (the CRDs and webhook configurations are cluster-wide), so the prefix is fixed
("kfp-operator") rather than derived from the release name; fullnameOverride changes it.
*/}}
{{- define "kfp-operator.fullname" -}}
{{- default "kfp-operator" .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "kfp-operator.webhookServiceName" -}}
{{- include "kfp-operator.fullname" . }}-webhook-service
{{- end -}}

{{- define "kfp-operator.feedServiceName" -}}
{{- include "kfp-operator.fullname" . }}-runcompletion-webhook-service
{{- end -}}

{{- define "kfp-operator.certificateName" -}}
{{- include "kfp-operator.fullname" . }}-serving-cert
{{- end -}}

{{- define "kfp-operator.serviceAccountName" -}}
{{- .Values.manager.serviceAccount.name -}}
{{- end -}}

{{/* The image tag: the chart's appVersion unless set. */}}
{{- define "kfp-operator.tag" -}}
{{- default .Chart.AppVersion .Values.manager.image.tag -}}
{{- end -}}

{{- define "kfp-operator.image" -}}
{{- $repository := printf "%s/%s" .Values.containerRegistry .Values.manager.image.repository -}}
{{- if .Values.manager.image.digest -}}
{{- printf "%s@%s" $repository .Values.manager.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (include "kfp-operator.tag" .) -}}
{{- end -}}
{{- end -}}

{{- define "kfp-operator.labels" -}}
app.kubernetes.io/name: kfp-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels of the operator pods; the Services and the NetworkPolicy select them. */}}
{{- define "kfp-operator.selectorLabels" -}}
app.kubernetes.io/name: kfp-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller-manager
{{- end -}}

{{/* The six kinds: kind name (lower case, as in webhook paths) -> plural. */}}
{{- define "kfp-operator.kinds" -}}
{{- toJson (dict "pipeline" "pipelines" "run" "runs" "runconfiguration" "runconfigurations" "runschedule" "runschedules" "experiment" "experiments" "provider" "providers") -}}
{{- end -}}

{{/* The HTTPS webhook server runs for admission webhooks and for the conversion webhook. */}}
{{- define "kfp-operator.webhookServer" -}}
{{- if or .Values.manager.webhooks.enabled .Values.manager.multiversion.enabled }}true{{ end -}}
{{- end -}}

{{/* The serviceMonitor value is a bool in the Go operator's chart and a map here; both work. */}}
{{- define "kfp-operator.serviceMonitor" -}}
{{- $sm := .Values.manager.monitoring.serviceMonitor -}}
{{- if kindIs "bool" $sm }}{{ if $sm }}true{{ end }}{{ else if $sm.create }}true{{ end -}}
{{- end -}}

{{/* The metrics Service: asked for, or needed by the ServiceMonitor, which selects it. */}}
{{- define "kfp-operator.metricsService" -}}
{{- if or .Values.manager.monitoring.create (include "kfp-operator.serviceMonitor" .) }}true{{ end -}}
{{- end -}}

{{/* The token Secret of the ServiceMonitor's authorization block: the given one, or the chart's scraper's. */}}
{{- define "kfp-operator.scraperTokenSecret" -}}
{{- $sm := .Values.manager.monitoring.serviceMonitor -}}
{{- $name := "" -}}
{{- if and (kindIs "map" $sm) $sm.tokenSecret -}}{{- $name = $sm.tokenSecret.name -}}{{- end -}}
{{- default (printf "%s-metrics-scraper-token" (include "kfp-operator.fullname" .)) $name -}}
{{- end -}}

{{/*
Where caBundles come from: annotations for cert-manager's CA injector, or the given bundle (custom). In `self`
mode the operator patches the caBundle itself, so neither is rendered.
*/}}
{{- define "kfp-operator.caInjectionAnnotations" -}}
{{- if eq .Values.manager.webhookCertificates.provider "cert-manager" -}}
cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/{{ include "kfp-operator.certificateName" . }}
{{- end -}}
{{- end -}}

{{- define "kfp-operator.clientConfig" -}}
{{- $config := dict "service" (dict "name" (include "kfp-operator.webhookServiceName" .root) "namespace" .root.Release.Namespace "path" .path "port" 443) -}}
{{- if and (eq .root.Values.manager.webhookCertificates.provider "custom") .root.Values.manager.webhookCertificates.caBundle -}}
{{- $_ := set $config "caBundle" .root.Values.manager.webhookCertificates.caBundle -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}

{{/* Namespaces that get the WorkflowTemplates: argo.namespaces (or the release namespace) and every Provider's. */}}
{{- define "kfp-operator.workflowNamespaces" -}}
{{- $namespaces := list -}}
{{- range .Values.argo.namespaces }}{{ $namespaces = append $namespaces . }}{{ end -}}
{{- if not $namespaces }}{{ $namespaces = list .Release.Namespace }}{{ end -}}
{{- range .Values.providers }}{{ $namespaces = append $namespaces (default $.Release.Namespace .namespace) }}{{ end -}}
{{- toJson (uniq $namespaces) -}}
{{- end -}}

{{/*
The operator's configuration file (docs/configuration.md): what other values imply, with manager.configuration
merged over `spec` and manager.systemConfiguration over `system`.
*/}}
{{- define "kfp-operator.configuration" -}}
{{- $fullname := include "kfp-operator.fullname" . -}}
{{- $tag := include "kfp-operator.tag" . -}}
{{- $certificates := .Values.manager.webhookCertificates -}}
{{- $system := dict
  "leaderElection" (dict "enabled" .Values.manager.leaderElection.enabled "id" .Values.manager.leaderElection.id)
  "healthAddress" (printf "0.0.0.0:%v" .Values.manager.healthPort)
  "metricsAddress" (printf "%s:%v" (ternary "127.0.0.1" "0.0.0.0" (.Values.manager.monitoring.rbacSecured | default false)) .Values.manager.metricsPort)
  "logging" (dict "format" "json" "level" (toString .Values.logging.verbosity)) -}}
{{- if include "kfp-operator.webhookServer" . -}}
{{- $mode := ternary "self" "files" (eq $certificates.provider "self") -}}
{{- $certs := dict "mode" $mode "secretName" $certificates.secretName -}}
{{- with $certificates.validity }}{{ $_ := set $certs "validity" . }}{{ end -}}
{{- with $certificates.rotateBefore }}{{ $_ := set $certs "rotateBefore" . }}{{ end -}}
{{- $webhook := dict "enabled" true "address" (printf "0.0.0.0:%v" .Values.manager.webhookServicePort) "serviceName" (include "kfp-operator.webhookServiceName" .) "certificates" $certs -}}
{{- if eq $mode "files" }}{{ $_ := set $webhook "certDir" "/tmp/k8s-webhook-server/serving-certs" }}{{ end -}}
{{- $_ := set $system "webhook" $webhook -}}
{{- end -}}
{{- $system = mergeOverwrite $system (deepCopy .Values.manager.systemConfiguration) -}}
{{- $p := .Values.provider -}}
{{- $env := list
  (dict "name" "OPERATORWEBHOOK" "value" (printf "http://%s.%s:80/events" (include "kfp-operator.feedServiceName" .) .Release.Namespace))
  (dict "name" "SERVER_PORT" "value" (toString $p.servicePort))
  (dict "name" "METRICS_PORT" "value" (toString $p.metricsPort)) -}}
{{- $container := dict "name" "provider-service" "env" (concat $env $p.env)
  "ports" (list (dict "name" "http" "containerPort" $p.servicePort) (dict "name" "metrics" "containerPort" $p.metricsPort)) -}}
{{- with $p.resources }}{{ $_ := set $container "resources" . }}{{ end -}}
{{- with $p.volumeMounts }}{{ $_ := set $container "volumeMounts" . }}{{ end -}}
{{- $podSpec := dict "containers" (list $container) -}}
{{- with $p.volumes }}{{ $_ := set $podSpec "volumes" . }}{{ end -}}
{{- $template := dict "spec" $podSpec -}}
{{- with $p.podTemplateLabels }}{{ $_ := set $template "metadata" (dict "labels" .) }}{{ end -}}
{{- $spec := dict
  "workflowNamespace" .Release.Namespace
  "multiversion" .Values.manager.multiversion.enabled
  "defaultTfxImage" (printf "%s/kfp-operator-tfx-compiler:%s" .Values.containerRegistry $tag)
  "defaultProviderValues" (dict "replicas" $p.replicas "servicePort" $p.servicePort "metricsPort" $p.metricsPort "labels" $p.labels "serviceContainerName" "provider-service" "podTemplateSpec" $template)
  "runCompletionFeed" (dict "port" .Values.manager.runcompletionWebhook.servicePort "endpoints" .Values.manager.runcompletionWebhook.endpoints) -}}
{{- if .Values.manager.runcompletionWebhook.allowUnauthenticated }}{{ $_ := set $spec.runCompletionFeed "authentication" (dict "allowUnauthenticated" true) }}{{ end -}}
{{- $spec = mergeOverwrite $spec (deepCopy .Values.manager.configuration) -}}
{{- if .Values.manager.multiversion.enabled }}{{ $_ := set $spec "multiversion" true }}{{ end -}}
{{- toYaml (dict "system" $system "spec" $spec) -}}
{{- end -}}

{{/* The configuration as a dict, for templates whose output depends on it (RBAC of the configured executor). */}}
{{- define "kfp-operator.configurationDict" -}}
{{- include "kfp-operator.configuration" . | fromYaml | toJson -}}
{{- end -}}
