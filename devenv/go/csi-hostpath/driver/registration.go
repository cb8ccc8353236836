package driver

import (
	"context"
	"log"

	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

// Registration answers the kubelet's plugin watcher on the socket in its plugins_registry
// directory (the part of node-driver-registrar this driver does itself): it names the
// driver and the socket where the kubelet reaches its Node service.
type Registration struct {
	registerapi.UnimplementedRegistrationServer

	DriverName string
	Endpoint   string
}

func (r *Registration) GetInfo(context.Context, *registerapi.InfoRequest) (*registerapi.PluginInfo, error) {
	return &registerapi.PluginInfo{
		Type:              registerapi.CSIPlugin,
		Name:              r.DriverName,
		Endpoint:          r.Endpoint,
		SupportedVersions: []string{"1.0.0"},
	}, nil
}

func (r *Registration) NotifyRegistrationStatus(_ context.Context, st *registerapi.RegistrationStatus) (*registerapi.RegistrationStatusResponse, error) {
	if st.GetPluginRegistered() {
		log.Printf("registered with the kubelet as %s", r.DriverName)
	} else {
		log.Printf("the kubelet refused the registration: %s", st.GetError())
	}
	return &registerapi.RegistrationStatusResponse{}, nil
}
