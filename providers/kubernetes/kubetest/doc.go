// Package kubetest starts a real etcd and kube-apiserver for tests (built by hack/kube.sh) and simulates the
// controllers that are not running, so Deployments roll out.
//
// Non-goals: a kubelet, a scheduler, networking (pods never run; their status is written), kube-controller-manager
// beyond the Deployment and namespace behaviour the provider reads, downloading binaries.
//
// Caller's duties: call Start from tests (it skips when the binaries are missing unless BERTH_REQUIRE_KUBE is set,
// then it fails), stop the shared cluster from TestMain (os.Exit(kubetest.Main(m))), and run
// RunDeploymentController, or call SimulateRollout/StallRollout in namespaces labelled LabelManual; run
// RunLoadBalancers for a namespace whose LoadBalancer Services should get an address (a cloud's service
// controller; elsewhere they stay pending).
//
// Main loop of the simulated controller, in a sketch:
//
//	on every Deployment, Pod or Namespace event, and every second:
//	    for each namespace being deleted (manual ones too; the namespace controller):
//	        delete its Deployments, pods, Services, Secrets, ConfigMaps and Ingresses
//	        none left → remove the finalizer "kubernetes" (namespaces/finalize): the apiserver removes it
//	    for each Deployment outside manual namespaces:
//	        create pods of the current template up to spec.replicas: Running, and Ready unless the readiness
//	            probe is an httpGet of UnreadyPath (the kubelet finds it failing)
//	        delete the newest extra pods; once every current pod is Ready (maxUnavailable 0), those of older
//	            templates
//	        write status: observedGeneration, replicas counts, Available and Progressing conditions
//	    delete pods whose Deployment is gone (the garbage collector)
//
// The cluster: etcd on free 127.0.0.1 ports with a temporary data dir; kube-apiserver on a free 127.0.0.1 port with
// a generated CA and serving certificate, a generated ECDSA service-account key pair, RBAC authorization, a static
// token of a system:masters user, service range 10.0.0.0/24 (a flag value only) and the ServiceAccount admission
// plugin off (no controller creates "default" service accounts). Start waits for /readyz.
package kubetest
