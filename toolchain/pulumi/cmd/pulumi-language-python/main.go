// Command pulumi-language-python is cf-access's own Python language host for
// the Pulumi engine.
//
// Why it exists: the upstream language host lives in its own Go module
// (github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3), which
// has no tags and which the Go module proxy reachable from our build machines
// does not serve at any version. The engine itself (pkg/v3 cmd/pulumi) and the
// gRPC contract (sdk/v3 proto) are served, so we implement the small part of
// the LanguageRuntime service that running an existing Python program needs:
// run the program through the SDK's own `pulumi-language-python-exec` script
// with the project's virtualenv, and report plugin info. Everything else
// (templates, codegen, packing) answers Unimplemented, which the engine
// tolerates. Users on their own machines install Pulumi the usual way and
// never use this binary.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Version is set at build time (-ldflags -X main.Version=...).
var Version = "0.0.0-dev"

// userActionableExitCode is what pulumi-language-python-exec exits with after
// it has already shown the user an error; the engine should then just bail.
const userActionableExitCode = 32

type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	engineAddress string
	tracing       string

	mu      sync.Mutex
	running map[*exec.Cmd]struct{}
}

func main() {
	tracing := flag.String("tracing", "", "Emit tracing to a Zipkin-compatible tracing endpoint")
	flag.String("root", "", "Project root path (ignored; the engine sends it with each request)")
	flag.Parse()

	h := &host{tracing: *tracing, running: map[*exec.Cmd]struct{}{}}
	if args := flag.Args(); len(args) > 0 {
		h.engineAddress = args[len(args)-1]
	}

	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, h)
			return nil
		},
		Options: rpcutil.OpenTracingServerInterceptorOptions(nil),
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-python: could not start gRPC server: %v\n", err)
		os.Exit(1)
	}
	// The engine reads the port from our first line of stdout.
	fmt.Printf("%d\n", handle.Port)
	h.exitWhenEngineIsGone()
	if err := <-handle.Done; err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-python: %v\n", err)
		os.Exit(1)
	}
}

func (h *host) Handshake(_ context.Context, req *pulumirpc.LanguageHandshakeRequest) (*pulumirpc.LanguageHandshakeResponse, error) {
	if req.GetEngineAddress() != "" {
		h.engineAddress = req.GetEngineAddress()
	}
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: Version}, nil
}

// A dynamic-provider-only program needs no plugins or packages downloaded.
func (h *host) GetRequiredPlugins(context.Context, *pulumirpc.GetRequiredPluginsRequest) (*pulumirpc.GetRequiredPluginsResponse, error) {
	return &pulumirpc.GetRequiredPluginsResponse{}, nil
}

func (h *host) GetRequiredPackages(context.Context, *pulumirpc.GetRequiredPackagesRequest) (*pulumirpc.GetRequiredPackagesResponse, error) {
	return &pulumirpc.GetRequiredPackagesResponse{}, nil
}

// pythonFor returns the interpreter for a program: the configured virtualenv's
// python when Pulumi.yaml sets runtime.options.virtualenv, else python3.
func pythonFor(info *pulumirpc.ProgramInfo, pwd string) (python string, venv string, err error) {
	if info != nil && info.GetOptions() != nil {
		if v, ok := info.GetOptions().GetFields()["virtualenv"]; ok && v.GetStringValue() != "" {
			venv = v.GetStringValue()
			if !filepath.IsAbs(venv) {
				base := info.GetRootDirectory()
				if base == "" {
					base = pwd
				}
				venv = filepath.Join(base, venv)
			}
			python = filepath.Join(venv, "bin", "python")
			if _, statErr := os.Stat(python); statErr != nil {
				return "", "", fmt.Errorf(
					"the virtualenv %q named in Pulumi.yaml does not exist or has no bin/python; "+
						"run the project's setup (make setup) to create it", venv)
			}
			return python, venv, nil
		}
	}
	if cmd := os.Getenv("PULUMI_PYTHON_CMD"); cmd != "" {
		return cmd, "", nil
	}
	return "python3", "", nil
}

func execScript() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	script := filepath.Join(filepath.Dir(self), "pulumi-language-python-exec")
	if _, err := os.Stat(script); err != nil {
		return "", fmt.Errorf("pulumi-language-python-exec not found next to %s: %w", self, err)
	}
	return script, nil
}

func programEnv(venv string, config map[string]string, secretKeys []string) ([]string, error) {
	if config == nil {
		config = map[string]string{}
	}
	cfg, err := json.Marshal(config)
	if err != nil {
		return nil, err
	}
	if secretKeys == nil {
		secretKeys = []string{}
	}
	keys, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, err
	}
	env := make([]string, 0, len(os.Environ())+4)
	for _, kv := range os.Environ() {
		if venv != "" && (strings.HasPrefix(kv, "PYTHONHOME=") || strings.HasPrefix(kv, "PATH=")) {
			continue
		}
		env = append(env, kv)
	}
	if venv != "" {
		env = append(env, "VIRTUAL_ENV="+venv, "PATH="+filepath.Join(venv, "bin")+":"+os.Getenv("PATH"))
	}
	env = append(env, "PULUMI_CONFIG="+string(cfg), "PULUMI_CONFIG_SECRET_KEYS="+string(keys))
	return env, nil
}

func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	python, venv, err := pythonFor(req.GetInfo(), req.GetPwd())
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	script, err := execScript()
	if err != nil {
		return nil, err
	}
	program := req.GetProgram()
	if program == "" {
		program = "."
	}
	args := []string{"-u", script,
		"--monitor", req.GetMonitorAddress(),
		"--engine", h.engineAddress,
		"--project", req.GetProject(),
		"--stack", req.GetStack(),
		"--pwd", req.GetPwd(),
		"--dry_run", strconv.FormatBool(req.GetDryRun()),
		"--parallel", strconv.Itoa(int(req.GetParallel())),
		"--organization", req.GetOrganization(),
	}
	if root := req.GetInfo().GetRootDirectory(); root != "" {
		args = append(args, "--root_directory", root)
	}
	if h.tracing != "" {
		args = append(args, "--tracing", h.tracing)
	}
	args = append(args, program)
	args = append(args, req.GetArgs()...)

	env, err := programEnv(venv, req.GetConfig(), req.GetConfigSecretKeys())
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, python, args...)
	cmd.Dir = req.GetPwd()
	cmd.Env = env
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	// The program stays in our process group: the engine stops a plugin by
	// signalling its whole group, and a program left running would keep the
	// engine's stdout pipe open (the engine waits for it to drain).

	h.track(cmd, true)
	defer h.track(cmd, false)
	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			if exitErr.ExitCode() == userActionableExitCode {
				return &pulumirpc.RunResponse{Bail: true}, nil
			}
			return &pulumirpc.RunResponse{Error: fmt.Sprintf("Program exited with non-zero exit code: %d", exitErr.ExitCode())}, nil
		}
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("Problem executing program (could not run language executor): %v", err)}, nil
	}
	return &pulumirpc.RunResponse{}, nil
}

// exitWhenEngineIsGone watches the engine, as upstream language hosts do: when the CLI dies
// abruptly (kill -9, a CI job killed, `pulumi preview | head`), nobody stops its plugins, and
// this host and the program it runs would otherwise live on. The engine's gRPC health check is
// polled every second; when it fails, the running programs are killed and the host exits.
func (h *host) exitWhenEngineIsGone() {
	if h.engineAddress == "" {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := rpcutil.Healthcheck(ctx, h.engineAddress, time.Second, cancel); err != nil {
		cancel()
		return
	}
	go func() {
		<-ctx.Done()
		h.mu.Lock()
		for cmd := range h.running {
			if cmd.Process != nil {
				_ = cmd.Process.Kill()
			}
		}
		h.mu.Unlock()
		os.Exit(0)
	}()
}

func (h *host) track(cmd *exec.Cmd, add bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if add {
		h.running[cmd] = struct{}{}
	} else {
		delete(h.running, cmd)
	}
}

// Cancel stops running programs (the engine calls it on Ctrl-C).
func (h *host) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for cmd := range h.running {
		if cmd.Process != nil {
			_ = cmd.Process.Signal(syscall.SIGINT)
		}
	}
	return &emptypb.Empty{}, nil
}

// InstallDependencies creates the virtualenv and installs requirements.txt into
// it, which is what `pulumi install` is expected to do for a Python project.
func (h *host) InstallDependencies(req *pulumirpc.InstallDependenciesRequest, server grpc.ServerStreamingServer[pulumirpc.InstallDependenciesResponse]) error {
	info := req.GetInfo()
	dir := req.GetDirectory()
	if info != nil && info.GetRootDirectory() != "" {
		dir = info.GetRootDirectory()
	}
	venv := "venv"
	if info != nil && info.GetOptions() != nil {
		if v, ok := info.GetOptions().GetFields()["virtualenv"]; ok && v.GetStringValue() != "" {
			venv = v.GetStringValue()
		}
	}
	if !filepath.IsAbs(venv) {
		venv = filepath.Join(dir, venv)
	}
	out := &streamWriter{send: func(b []byte) error {
		return server.Send(&pulumirpc.InstallDependenciesResponse{Stdout: b})
	}}
	steps := [][]string{}
	if _, err := os.Stat(filepath.Join(venv, "bin", "python")); err != nil {
		steps = append(steps, []string{"python3", "-m", "venv", venv})
	}
	steps = append(steps, []string{filepath.Join(venv, "bin", "python"), "-m", "pip", "install", "-r", filepath.Join(dir, "requirements.txt")})
	for _, step := range steps {
		cmd := exec.CommandContext(server.Context(), step[0], step[1:]...)
		cmd.Dir = dir
		cmd.Stdout = out
		cmd.Stderr = out
		if err := cmd.Run(); err != nil {
			return status.Errorf(codes.Internal, "%s failed: %v", strings.Join(step, " "), err)
		}
	}
	return nil
}

type streamWriter struct{ send func([]byte) error }

func (w *streamWriter) Write(p []byte) (int, error) {
	buf := make([]byte, len(p))
	copy(buf, p)
	if err := w.send(buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (h *host) About(_ context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	python, _, err := pythonFor(req.GetInfo(), "")
	if err != nil {
		python = "python3"
	}
	version, _ := exec.Command(python, "--version").Output()
	return &pulumirpc.AboutResponse{
		Executable: python,
		Version:    strings.TrimPrefix(strings.TrimSpace(string(version)), "Python "),
	}, nil
}

// GetProgramDependencies lists the packages installed in the program's
// interpreter (`pulumi about` shows them).
func (h *host) GetProgramDependencies(_ context.Context, req *pulumirpc.GetProgramDependenciesRequest) (*pulumirpc.GetProgramDependenciesResponse, error) {
	python, _, err := pythonFor(req.GetInfo(), req.GetPwd())
	if err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	cmd := exec.Command(python, "-m", "pip", "list", "--format=json", "--disable-pip-version-check")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var pkgs []struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	decodeErr := json.NewDecoder(bufio.NewReader(stdout)).Decode(&pkgs)
	_, _ = io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		return nil, err
	}
	if decodeErr != nil {
		return nil, decodeErr
	}
	resp := &pulumirpc.GetProgramDependenciesResponse{}
	for _, p := range pkgs {
		resp.Dependencies = append(resp.Dependencies, &pulumirpc.DependencyInfo{Name: p.Name, Version: p.Version})
	}
	return resp, nil
}
