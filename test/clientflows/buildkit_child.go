package clientflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	"google.golang.org/protobuf/proto"
)

// BuildKitJobEnv names the job when a program runs as a BuildKit client
// of its own (RunBuildKitIfAsked). dockgate knows a caller by its
// process's uid: a build as a CI tenant is a process started as that
// user, not a goroutine of the test.
const BuildKitJobEnv = "DOCKGATE_BUILDKIT_JOB"

// BuildKitJob is one build for such a process: a Dockerfile build, or an
// LLB definition (NewLLBJob) with its solve's options.
type BuildKitJob struct {
	Socket     string           `json:"socket"`
	Dockerfile *DockerfileBuild `json:"dockerfile,omitempty"`
	LLB        []byte           `json:"llb,omitempty"` // a marshalled pb.Definition
	LLBSolve   LLBSolve         `json:"llb_solve"`
	Timeout    time.Duration    `json:"timeout,omitempty"` // 3 minutes when zero
}

// BuildKitOutcome is what the process printed: BuildKit's error text
// (empty on success), the progress log and the exporter's response.
type BuildKitOutcome struct {
	Err              string            `json:"error,omitempty"`
	Log              string            `json:"log"`
	ExporterResponse map[string]string `json:"exporter_response,omitempty"`
}

// NewLLBJob is the job that solves st on the BuildKit behind socket.
func NewLLBJob(ctx context.Context, socket string, st llb.State, s LLBSolve) (BuildKitJob, error) {
	def, err := st.Marshal(ctx)
	if err != nil {
		return BuildKitJob{}, fmt.Errorf("marshal LLB: %w", err)
	}
	raw, err := proto.Marshal(def.ToPB())
	if err != nil {
		return BuildKitJob{}, fmt.Errorf("marshal LLB definition: %w", err)
	}
	return BuildKitJob{Socket: socket, LLB: raw, LLBSolve: s}, nil
}

// Env is the environment that makes a program that calls
// RunBuildKitIfAsked first run the job.
func (j BuildKitJob) Env() ([]string, error) {
	b, err := json.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("buildkit job: %w", err)
	}
	return []string{BuildKitJobEnv + "=" + string(b)}, nil
}

// ParseBuildKitOutcome reads what the job's process printed.
func ParseBuildKitOutcome(stdout string) (BuildKitOutcome, error) {
	var o BuildKitOutcome
	if err := json.Unmarshal([]byte(strings.TrimSpace(stdout)), &o); err != nil {
		return o, fmt.Errorf("the BuildKit job printed no outcome (%w): %q", err, stdout)
	}
	return o, nil
}

// RunBuildKitIfAsked runs the job the environment names (BuildKitJobEnv),
// prints its outcome as JSON and exits: 0 when the build succeeded, 1 when
// BuildKit (or whatever stands in front of it) failed it, 2 when the job
// could not be read. Without the variable it returns at once.
func RunBuildKitIfAsked() {
	raw := os.Getenv(BuildKitJobEnv)
	if raw == "" {
		return
	}
	var job BuildKitJob
	if err := json.Unmarshal([]byte(raw), &job); err != nil {
		fmt.Fprintln(os.Stderr, "buildkit job:", err)
		os.Exit(2)
	}
	out, err := runBuildKitJob(job)
	if err != nil {
		out.Err = err.Error()
	}
	b, merr := json.Marshal(out)
	if merr != nil {
		fmt.Fprintln(os.Stderr, "buildkit job:", merr)
		os.Exit(2)
	}
	fmt.Println(string(b))
	if err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}

func runBuildKitJob(job BuildKitJob) (BuildKitOutcome, error) {
	timeout := job.Timeout
	if timeout == 0 {
		timeout = 3 * time.Minute
	}
	// Ended as the docker CLI is ended: a build cancelled by SIGTERM still
	// prints what it got so far.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	bk, err := DialBuildKit(ctx, job.Socket)
	if err != nil {
		return BuildKitOutcome{}, err
	}
	defer bk.Close()
	var res BuildResult
	switch {
	case job.Dockerfile != nil && job.LLB == nil:
		res, err = bk.BuildDockerfile(ctx, *job.Dockerfile)
	case job.LLB != nil && job.Dockerfile == nil:
		var def pb.Definition
		if err := proto.Unmarshal(job.LLB, &def); err != nil {
			return BuildKitOutcome{}, fmt.Errorf("buildkit job: LLB definition: %w", err)
		}
		var d llb.Definition
		d.FromPB(&def)
		res, err = bk.solve(ctx, &d, bkSolveOpt(job.LLBSolve), job.LLBSolve.Tag, job.LLBSolve.Push)
	default:
		return BuildKitOutcome{}, errors.New("buildkit job: give a Dockerfile build or an LLB definition")
	}
	out := BuildKitOutcome{Log: res.Log}
	if res.Response != nil {
		out.ExporterResponse = res.Response.ExporterResponse
	}
	return out, err
}
