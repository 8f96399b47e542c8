package authz

import "testing"

// Bodies captured from the docker CLIs of the test bed (28.2 at
// /usr/local/bin/docker, Debian's 20.10 at /usr/bin/docker) talking to a
// recording socket. They must be read, not refused as unknown or
// ambiguous, and yield exactly the facts of their flags.
//
// The dangerous run is:
//
//	docker create --privileged -v /:/host --mount type=bind,source=/etc,target=/e
//	  --cap-add SYS_ADMIN --cap-add ALL --cap-drop ALL --device /dev/null --pid host
//	  --network host --ipc host --uts host --userns host --cgroupns host
//	  --security-opt seccomp=unconfined --security-opt label=disable
//	  --security-opt apparmor=unconfined --security-opt systempaths=unconfined
//	  --security-opt no-new-privileges=false --sysctl net.core.somaxconn=1024
//	  --runtime kata --cgroup-parent / --log-driver syslog -p 80:80
//	  -p 127.0.0.1:22:22/udp --oom-kill-disable --oom-score-adj -500
//	  --pids-limit -1 --restart always --device-cgroup-rule 'c 1:3 mr' --gpus all
//	  --volumes-from builder -v myvol:/data
//	  --mount type=volume,source=v2,target=/v2,volume-driver=local,volume-opt=type=none,volume-opt=o=bind,volume-opt=device=/
//	  --tmpfs /run -e SECRET=x -l a=b --init --shm-size 64m --ulimit nofile=1024
//	  --add-host h:1.2.3.4 --dns 8.8.8.8 --memory 64m --cpus 1 busybox true
const (
	// docker service create --detach --no-resolve-image --name s1 --cap-add SYS_ADMIN
	//   --mount type=bind,source=/etc,target=/e -p 80:80 --sysctl net.core.somaxconn=1
	//   --log-driver gelf busybox top
	cli28Service = `{"Name":"s1","Labels":{},"TaskTemplate":{"ContainerSpec":{"Image":"busybox:latest","Args":["top"],"Init":false,"Mounts":[{"Type":"bind","Source":"/etc","Target":"/e"}],"DNSConfig":{},"Sysctls":{"net.core.somaxconn":"1"},"CapabilityAdd":["CAP_SYS_ADMIN"]},"Resources":{"Limits":{},"Reservations":{}},"Placement":{},"LogDriver":{"Name":"gelf"},"ForceUpdate":0},"Mode":{"Replicated":{}},"EndpointSpec":{"Mode":"vip","Ports":[{"Protocol":"tcp","TargetPort":80,"PublishedPort":80,"PublishMode":"ingress"}]}}
`
	cli2010Service = `{"Name":"s1","Labels":{},"TaskTemplate":{"ContainerSpec":{"Image":"busybox:latest","Args":["top"],"Init":false,"Mounts":[{"Type":"bind","Source":"/etc","Target":"/e"}],"DNSConfig":{},"Sysctls":{"net.core.somaxconn":"1"},"CapabilityAdd":["CAP_SYS_ADMIN"]},"Resources":{"Limits":{},"Reservations":{}},"Placement":{},"LogDriver":{"Name":"gelf"},"ForceUpdate":0},"Mode":{"Replicated":{}},"EndpointSpec":{"Mode":"vip","Ports":[{"Protocol":"tcp","TargetPort":80,"PublishedPort":80,"PublishMode":"ingress"}]}}
`

	cli28Dangerous = `{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"ExposedPorts":{"22/udp":{},"80/tcp":{}},"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["SECRET=x"],"Cmd":["true"],"Image":"busybox","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{"a":"b"},"HostConfig":{"Binds":["/:/host","myvol:/data"],"ContainerIDFile":"","LogConfig":{"Type":"syslog","Config":{}},"NetworkMode":"host","PortBindings":{"22/udp":[{"HostIp":"127.0.0.1","HostPort":"22"}],"80/tcp":[{"HostIp":"","HostPort":"80"}]},"RestartPolicy":{"Name":"always","MaximumRetryCount":0},"AutoRemove":false,"VolumeDriver":"","VolumesFrom":["builder"],"ConsoleSize":[0,0],"CapAdd":["ALL","CAP_SYS_ADMIN"],"CapDrop":["ALL"],"CgroupnsMode":"host","Dns":["8.8.8.8"],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":["h:1.2.3.4"],"GroupAdd":null,"IpcMode":"host","Cgroup":"","Links":null,"OomScoreAdj":-500,"PidMode":"host","Privileged":true,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":["seccomp=unconfined","label=disable","apparmor=unconfined","no-new-privileges=false"],"Tmpfs":{"/run":""},"UTSMode":"host","UsernsMode":"host","ShmSize":67108864,"Sysctls":{"net.core.somaxconn":"1024"},"Runtime":"kata","Isolation":"","CpuShares":0,"Memory":67108864,"NanoCpus":1000000000,"CgroupParent":"/","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[{"PathOnHost":"/dev/null","PathInContainer":"/dev/null","CgroupPermissions":"rwm"}],"DeviceCgroupRules":["c 1:3 mr"],"DeviceRequests":[{"Driver":"","Count":-1,"DeviceIDs":null,"Capabilities":[["gpu"]],"Options":{}}],"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":-1,"OomKillDisable":true,"PidsLimit":-1,"Ulimits":[{"Name":"nofile","Hard":1024,"Soft":1024}],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"Mounts":[{"Type":"bind","Source":"/etc","Target":"/e"},{"Type":"volume","Source":"v2","Target":"/v2","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"device":"/","o":"bind","type":"none"}}}}],"MaskedPaths":[],"ReadonlyPaths":[],"Init":true},"NetworkingConfig":{"EndpointsConfig":{}}}
`
	cli28Plain = `{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["true"],"Image":"busybox","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{},"HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"default","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":false,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[0,0],"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":-1,"OomKillDisable":false,"PidsLimit":0,"Ulimits":[],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null},"NetworkingConfig":{"EndpointsConfig":{"default":{"IPAMConfig":null,"Links":null,"Aliases":null,"MacAddress":"","DriverOpts":null,"GwPriority":0,"NetworkID":"","EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}}}}
`
	cli28Exec = `{"User":"root","Privileged":true,"Tty":false,"AttachStdin":false,"AttachStderr":true,"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":["A=b"],"WorkingDir":"/","Cmd":["true"]}
`
	cli28Update = `{"CpuShares":0,"Memory":67108864,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":null,"BlkioDeviceReadBps":null,"BlkioDeviceWriteBps":null,"BlkioDeviceReadIOps":null,"BlkioDeviceWriteIOps":null,"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":null,"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":null,"OomKillDisable":null,"PidsLimit":null,"Ulimits":null,"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"RestartPolicy":{"Name":"","MaximumRetryCount":0}}
`
	cli2010Dangerous = `{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"ExposedPorts":{"22/udp":{},"80/tcp":{}},"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["SECRET=x"],"Cmd":["true"],"Image":"busybox","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{"a":"b"},"HostConfig":{"Binds":["/:/host","myvol:/data"],"ContainerIDFile":"","LogConfig":{"Type":"syslog","Config":{}},"NetworkMode":"host","PortBindings":{"22/udp":[{"HostIp":"127.0.0.1","HostPort":"22"}],"80/tcp":[{"HostIp":"","HostPort":"80"}]},"RestartPolicy":{"Name":"always","MaximumRetryCount":0},"AutoRemove":false,"VolumeDriver":"","VolumesFrom":["builder"],"CapAdd":["SYS_ADMIN","ALL"],"CapDrop":["ALL"],"CgroupnsMode":"host","Dns":["8.8.8.8"],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":["h:1.2.3.4"],"GroupAdd":null,"IpcMode":"host","Cgroup":"","Links":null,"OomScoreAdj":-500,"PidMode":"host","Privileged":true,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":["seccomp=unconfined","label=disable","apparmor=unconfined","no-new-privileges=false"],"Tmpfs":{"/run":""},"UTSMode":"host","UsernsMode":"host","ShmSize":67108864,"Sysctls":{"net.core.somaxconn":"1024"},"Runtime":"kata","ConsoleSize":[0,0],"Isolation":"","CpuShares":0,"Memory":67108864,"NanoCpus":1000000000,"CgroupParent":"/","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":null,"BlkioDeviceWriteBps":null,"BlkioDeviceReadIOps":null,"BlkioDeviceWriteIOps":null,"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[{"PathOnHost":"/dev/null","PathInContainer":"/dev/null","CgroupPermissions":"rwm"}],"DeviceCgroupRules":["c 1:3 mr"],"DeviceRequests":[{"Driver":"","Count":-1,"DeviceIDs":null,"Capabilities":[["gpu"]],"Options":{}}],"KernelMemory":0,"KernelMemoryTCP":0,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":-1,"OomKillDisable":true,"PidsLimit":-1,"Ulimits":[{"Name":"nofile","Hard":1024,"Soft":1024}],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"Mounts":[{"Type":"bind","Source":"/etc","Target":"/e"},{"Type":"volume","Source":"v2","Target":"/v2","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"device":"/","o":"bind","type":"none"}}}}],"MaskedPaths":[],"ReadonlyPaths":[],"Init":true},"NetworkingConfig":{"EndpointsConfig":{}}}
`
	cli2010Plain = `{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["true"],"Image":"busybox","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{},"HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"default","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":false,"VolumeDriver":"","VolumesFrom":null,"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,"ConsoleSize":[0,0],"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":null,"BlkioDeviceWriteBps":null,"BlkioDeviceReadIOps":null,"BlkioDeviceWriteIOps":null,"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"KernelMemory":0,"KernelMemoryTCP":0,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":-1,"OomKillDisable":false,"PidsLimit":0,"Ulimits":null,"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null},"NetworkingConfig":{"EndpointsConfig":{}}}
`
	cli2010Exec = `{"User":"root","Privileged":true,"Tty":false,"AttachStdin":false,"AttachStderr":true,"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":["A=b"],"WorkingDir":"/","Cmd":["true"]}
`
	cli2010Update = `{"CpuShares":0,"Memory":67108864,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":null,"BlkioDeviceReadBps":null,"BlkioDeviceWriteBps":null,"BlkioDeviceReadIOps":null,"BlkioDeviceWriteIOps":null,"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":null,"DeviceCgroupRules":null,"DeviceRequests":null,"KernelMemory":0,"KernelMemoryTCP":0,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":null,"OomKillDisable":null,"PidsLimit":null,"Ulimits":null,"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"RestartPolicy":{"Name":"","MaximumRetryCount":0}}
`
)

func TestRealCLIBodies(t *testing.T) {
	dangerous := []string{
		"image docker.io/library/busybox:latest", "privileged container", "bind /", "bind /etc",
		"bind /srv/ci-cache", "docker-socket /run/dockgate/docker.sock", "device /dev/null", "device cgroup-rule:c 1:3 mr", "device request:",
		"cgroup-parent /", "resource oom-kill-disable", "capability ALL", "capability SYS_ADMIN",
		"namespace network=host", "namespace pid=host", "namespace ipc=host", "namespace uts=host",
		"namespace userns=host", "namespace cgroupns=host", "security-opt seccomp=unconfined",
		"security-opt label=disable", "security-opt apparmor=unconfined", "security-opt no-new-privileges=false",
		"security-opt systempaths=unconfined", "sysctl net.core.somaxconn=1024", "runtime kata",
		"log-driver syslog", "port 22", "port 80", "resource oom-score-adj=-500", "resource restart=always",
	}
	plain := []string{"image docker.io/library/busybox:latest"}
	service := []string{"image docker.io/library/busybox:latest", "capability SYS_ADMIN", "sysctl net.core.somaxconn=1", "bind /etc", "log-driver gelf", "port 80"}
	runFactCases(t, []factCase{
		{name: "docker 28 run with every dangerous flag", target: createTarget, body: cli28Dangerous, want: dangerous},
		{name: "docker 20.10 run with every dangerous flag", target: createTarget, body: cli2010Dangerous, want: dangerous},
		{name: "docker 28 plain run", target: createTarget + "?name=plain", body: cli28Plain, want: plain, exact: true},
		{name: "docker 20.10 plain run", target: createTarget + "?name=plain", body: cli2010Plain, want: plain, exact: true},
		{name: "docker 28 exec --privileged", target: "/v1.41/containers/c1/exec", body: cli28Exec, want: []string{"privileged exec"}, exact: true},
		{name: "docker 20.10 exec --privileged", target: "/v1.41/containers/c1/exec", body: cli2010Exec, want: []string{"privileged exec"}, exact: true},
		{name: "docker 28 update --memory", target: "/v1.41/containers/c1/update", body: cli28Update, exact: true},
		{name: "docker 20.10 update --memory", target: "/v1.41/containers/c1/update", body: cli2010Update, exact: true},
		{name: "docker 28 service create", target: "/v1.41/services/create", body: cli28Service, want: service, exact: true},
		{name: "docker 20.10 service create", target: "/v1.41/services/create", body: cli2010Service, want: service, exact: true},
	})
}
