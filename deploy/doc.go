// Package deploy holds no code: its tests check the deployment files beside
// it (NATS cluster configuration, Kubernetes manifests, Prometheus rules,
// Grafana dashboard, systemd unit) so they cannot rot unnoticed.
package deploy
