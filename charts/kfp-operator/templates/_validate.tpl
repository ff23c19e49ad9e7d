{{/*
Checks of values that would otherwise render something that fails later, or that the Go operator's chart had and
this chart replaces. Each message names the value and says what to do.
*/}}
{{- define "kfp-operator.validate" -}}
{{- $certificates := .Values.manager.webhookCertificates -}}
{{- if not (has $certificates.provider (list "self" "cert-manager" "custom")) -}}
{{- fail (printf "manager.webhookCertificates.provider is %q; it must be self, cert-manager or custom." $certificates.provider) -}}
{{- end -}}
{{- if and (eq $certificates.provider "custom") (not $certificates.caBundle) -}}
{{- fail "manager.webhookCertificates.provider is custom but manager.webhookCertificates.caBundle is empty; set it to the base64 PEM bundle of the CA that signed the certificate in the Secret manager.webhookCertificates.secretName." -}}
{{- end -}}
{{- if not (has .Values.manager.multiversion.storedVersion (list "v1beta1" "v1alpha6" "v1alpha5")) -}}
{{- fail (printf "manager.multiversion.storedVersion is %q; it must be v1beta1, v1alpha6 or v1alpha5." .Values.manager.multiversion.storedVersion) -}}
{{- end -}}
{{- if and (ne .Values.manager.multiversion.storedVersion "v1beta1") (not .Values.manager.multiversion.enabled) -}}
{{- fail (printf "manager.multiversion.storedVersion is %q but manager.multiversion.enabled is false, so only v1beta1 is served; enable multiversion or store v1beta1." .Values.manager.multiversion.storedVersion) -}}
{{- end -}}
{{- if and (gt (int .Values.manager.replicas) 1) (not .Values.manager.leaderElection.enabled) -}}
{{- fail (printf "manager.replicas is %v but manager.leaderElection.enabled is false; replicas would reconcile the same objects at once. Enable leader election." .Values.manager.replicas) -}}
{{- end -}}
{{- /*
The operator pod's ports must differ: with manager.hostNetwork they are all ports of the node, and the API server
refuses a pod whose host ports repeat.
*/ -}}
{{- $ports := list (list "manager.healthPort" .Values.manager.healthPort) (list "manager.metricsPort" .Values.manager.metricsPort) (list "manager.runcompletionWebhook.servicePort" .Values.manager.runcompletionWebhook.servicePort) -}}
{{- if include "kfp-operator.webhookServer" . }}{{ $ports = append $ports (list "manager.webhookServicePort" .Values.manager.webhookServicePort) }}{{ end -}}
{{- if .Values.manager.monitoring.rbacSecured }}{{ $ports = append $ports (list "kube-rbac-proxy's port (manager.monitoring.rbacSecured)" 8443) }}{{ end -}}
{{- range $i, $a := $ports -}}
{{- range $j, $b := $ports -}}
{{- if and (lt $i $j) (eq (int (index $a 1)) (int (index $b 1))) -}}
{{- fail (printf "%s and %s are both %v; the operator pod's ports must differ. Change one of them." (index $a 0) (index $b 0) (int (index $a 1))) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if .Values.manager.runcompletionWebhook.allowUnauthenticated -}}
{{- if not .Values.networkPolicy.enabled -}}
{{- fail "manager.runcompletionWebhook.allowUnauthenticated is true but networkPolicy.enabled is false; without a token only the NetworkPolicy keeps other senders away from the run-completion feed. Enable it." -}}
{{- end -}}
{{- if not (or .Values.networkPolicy.feedFrom .Values.networkPolicy.providerNames .Values.providers) -}}
{{- fail "manager.runcompletionWebhook.allowUnauthenticated is true but no provider pod may reach the feed; name the Providers in networkPolicy.providerNames (or select their pods with networkPolicy.feedFrom)." -}}
{{- end -}}
{{- end -}}
{{- with .Values.namespace -}}
{{- if and (kindIs "map" .) .name (ne .name $.Release.Namespace) -}}
{{- fail (printf "namespace.name is %q, but this chart installs into the release namespace %q; install with `helm install -n %s --create-namespace` and drop the namespace value." .name $.Release.Namespace .name) -}}
{{- end -}}
{{- end -}}
{{- with .Values.runcompletionEventTrigger -}}
{{- if and (kindIs "map" .) .enabled -}}
{{- fail "runcompletionEventTrigger.enabled is true, but this operator publishes run-completion events to NATS itself; drop the value and configure NATS under manager.configuration.runCompletionFeed." -}}
{{- end -}}
{{- end -}}
{{- with .Values.statusFeedback -}}
{{- if and (kindIs "map" .) .enabled -}}
{{- fail "statusFeedback.enabled is true, but this chart does not install an Argo Events EventBus; drop the value and configure NATS under manager.configuration.runCompletionFeed." -}}
{{- end -}}
{{- end -}}
{{- /*
The Go operator's (v0.7.0) values this chart does not have: refused with the key to use instead, since the
migration guide says old values files load and a silently ignored value would be a surprise later.
*/ -}}
{{- if .Values.nameOverride -}}
{{- fail "nameOverride is a value of the Go operator's chart; this chart names objects by fullnameOverride (the prefix of every object name). Use that and drop nameOverride." -}}
{{- end -}}
{{- with .Values.namespace -}}
{{- if and (kindIs "map" .) .metadata -}}
{{- fail "namespace.metadata is a value of the Go operator's chart; this chart does not create the namespace (helm install -n <namespace> --create-namespace). Label or annotate the namespace yourself and drop namespace.metadata." -}}
{{- end -}}
{{- end -}}
{{- if .Values.manager.metadata -}}
{{- fail "manager.metadata is a value of the Go operator's chart; use manager.podLabels and manager.podAnnotations for the operator pods' metadata." -}}
{{- end -}}
{{- with .Values.manager.argo -}}
{{- if kindIs "map" . -}}
{{- range $key := keys . | sortAlpha -}}
{{- $value := index $.Values.manager.argo $key -}}
{{- if eq $key "serviceAccount" -}}
{{- /* The Go default (kfp-operator-argo, created) is what argo.serviceAccount does here: accepted. */ -}}
{{- if or (ne (toString ($value | default dict).create) "true") (ne (($value | default dict).name | default $.Values.argo.serviceAccount.name) $.Values.argo.serviceAccount.name) -}}
{{- fail "manager.argo.serviceAccount is a value of the Go operator's chart; the Argo Workflows' ServiceAccount is argo.serviceAccount.name (and argo.serviceAccount.annotations), created by argo.create." -}}
{{- end -}}
{{- else if $value -}}
{{- fail (printf "manager.argo.%s is a value of the Go operator's chart; this chart has no equivalent: the operator's Workflows come from the WorkflowTemplates of argo.create (images in argo.images, ServiceAccount in argo.serviceAccount). Drop manager.argo.%s." $key $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- with .Values.manager.runcompletionWebhook -}}
{{- if hasKey . "port" -}}
{{- fail "manager.runcompletionWebhook.port is not a value of this chart; the feed's container port is manager.runcompletionWebhook.servicePort." -}}
{{- end -}}
{{- end -}}
{{- $sm := .Values.manager.monitoring.serviceMonitor -}}
{{- if and (kindIs "map" $sm) $sm.endpointConfiguration -}}
{{- fail "manager.monitoring.serviceMonitor.endpointConfiguration is a value of the Go operator's chart; this chart renders the endpoint itself (port, scheme, authorization with manager.monitoring.serviceMonitor.tokenSecret) and takes manager.monitoring.serviceMonitor.interval. Drop endpointConfiguration." -}}
{{- end -}}
{{- with .Values.eventsourceServer -}}
{{- if and (kindIs "map" .) (ne (toString .create) "false") -}}
{{- fail "eventsourceServer is a value of the Go operator's chart; this operator serves the run-completion feed itself (manager.runcompletionWebhook). Drop eventsourceServer (or set eventsourceServer.create=false)." -}}
{{- end -}}
{{- end -}}
{{- range $i, $p := .Values.providers -}}
{{- range $key := list "name" "serviceImage" "pipelineRootStorage" -}}
{{- if not (index $p $key) -}}
{{- fail (printf "providers[%d].%s is required." $i $key) -}}
{{- end -}}
{{- end -}}
{{- range $j, $f := $p.frameworks -}}
{{- range $k, $patch := $f.patches -}}
{{- if hasKey $patch "patch" -}}
{{- fail (printf "providers[%d].frameworks[%d].patches[%d] has a `patch` field; the field is called `payload`." $i $j $k) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range $j, $e := $p.podTemplateEnv -}}
{{- $name := upper $e.name -}}
{{- if or (eq $name "PROVIDERNAME") (eq $name "PIPELINEROOTSTORAGE") (hasPrefix "PARAMETERS_" $name) -}}
{{- fail (printf "providers[%d].podTemplateEnv[%d].name is %q, which is reserved by the operator (PROVIDERNAME, PIPELINEROOTSTORAGE, PARAMETERS_*)." $i $j $e.name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
