module podcheckpoint.dev/gitops

go 1.26.0

require (
	github.com/yuin/gopher-lua v1.1.2 // indirect
	go.yaml.in/yaml/v2 v2.4.2 // indirect
	sigs.k8s.io/cli-utils v0.37.2 // indirect
	sigs.k8s.io/yaml v1.6.0 // indirect
)
