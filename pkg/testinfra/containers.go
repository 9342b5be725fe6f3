package testinfra

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// Images used where a Docker engine exists; the same as docker-compose.yml.
const (
	KafkaImage      = "apache/kafka:4.1.1"
	RedisImage      = "redis:7"
	ClickHouseImage = "clickhouse/clickhouse-server:25.8"
)

var (
	dockerOnce sync.Once
	dockerOK   bool
)

func dockerAvailable() bool {
	dockerOnce.Do(func() {
		defer func() {
			if recover() != nil {
				dockerOK = false
			}
		}()
		p, err := testcontainers.ProviderDefault.GetProvider()
		if err != nil {
			return
		}
		defer p.Close()
		dockerOK = p.Health(context.Background()) == nil
	})
	return dockerOK
}

// startKafka runs a single KRaft node. Kafka hands clients the advertised
// address, so the container must advertise the host port it is mapped to;
// we pick a free port first and bind it explicitly.
func startKafka(ctx context.Context) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	hostPort := strconv.Itoa(port)
	c, err := testcontainers.Run(ctx, KafkaImage,
		testcontainers.WithExposedPorts("9092/tcp"),
		testcontainers.WithEnv(map[string]string{
			"KAFKA_NODE_ID":                                  "1",
			"KAFKA_PROCESS_ROLES":                            "broker,controller",
			"KAFKA_LISTENERS":                                "PLAINTEXT://:9092,CONTROLLER://:9093",
			"KAFKA_ADVERTISED_LISTENERS":                     "PLAINTEXT://127.0.0.1:" + hostPort,
			"KAFKA_CONTROLLER_LISTENER_NAMES":                "CONTROLLER",
			"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP":           "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
			"KAFKA_CONTROLLER_QUORUM_VOTERS":                 "1@localhost:9093",
			"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR":         "1",
			"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
			"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR":            "1",
			"KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS":         "0",
			"KAFKA_AUTO_CREATE_TOPICS_ENABLE":                "false",
		}),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.PortBindings = network.PortMap{
				network.MustParsePort("9092/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: hostPort}},
			}
		}),
		testcontainers.WithWaitStrategy(wait.ForListeningPort("9092/tcp")),
	)
	if err != nil {
		return "", fmt.Errorf("kafka container: %w", err)
	}
	return c.PortEndpoint(ctx, "9092/tcp", "")
}

func startRedis(ctx context.Context) (string, error) {
	c, err := testcontainers.Run(ctx, RedisImage,
		testcontainers.WithExposedPorts("6379/tcp"),
		testcontainers.WithWaitStrategy(wait.ForListeningPort("6379/tcp")),
	)
	if err != nil {
		return "", fmt.Errorf("redis container: %w", err)
	}
	return c.PortEndpoint(ctx, "6379/tcp", "")
}

func startClickHouse(ctx context.Context) (string, error) {
	c, err := testcontainers.Run(ctx, ClickHouseImage,
		testcontainers.WithExposedPorts("9000/tcp", "8123/tcp"),
		testcontainers.WithEnv(map[string]string{"CLICKHOUSE_SKIP_USER_SETUP": "1"}),
		testcontainers.WithWaitStrategy(wait.ForHTTP("/ping").WithPort("8123/tcp")),
	)
	if err != nil {
		return "", fmt.Errorf("clickhouse container: %w", err)
	}
	return c.PortEndpoint(ctx, "9000/tcp", "")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
