import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The Java client with its defaults, for interop tests.
 *
 *   produce BOOTSTRAP TOPIC   reads "key TAB value" lines from stdin, publishes each keyed
 *                             record with the default partitioner, prints "key TAB partition"
 *   consume BOOTSTRAP TOPIC N reads N records from the beginning, prints one line each:
 *                             "partition TAB key TAB value TAB name=value;name=value"
 */
public final class KeyedClient {
    public static void main(String[] args) throws Exception {
        if (args.length >= 3 && args[0].equals("produce")) {
            produce(args[1], args[2]);
        } else if (args.length >= 4 && args[0].equals("consume")) {
            consume(args[1], args[2], Integer.parseInt(args[3]));
        } else {
            System.err.println("usage: produce BOOTSTRAP TOPIC | consume BOOTSTRAP TOPIC N");
            System.exit(2);
        }
    }

    private static void produce(String bootstrap, String topic) throws Exception {
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("acks", "all");
        props.put("key.serializer", StringSerializer.class.getName());
        props.put("value.serializer", StringSerializer.class.getName());
        List<String> keys = new ArrayList<>();
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
            BufferedReader in = new BufferedReader(
                new InputStreamReader(System.in, StandardCharsets.UTF_8));
            String line;
            while ((line = in.readLine()) != null) {
                if (line.isEmpty()) {
                    continue;
                }
                String[] parts = line.split("\t", 2);
                keys.add(parts[0]);
                sent.add(producer.send(new ProducerRecord<>(topic, parts[0], parts[1])));
            }
            producer.flush();
            for (int i = 0; i < sent.size(); i++) {
                System.out.println(keys.get(i) + "\t" + sent.get(i).get().partition());
            }
        }
    }

    private static void consume(String bootstrap, String topic, int count) {
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("group.id", "keyed-client-" + System.nanoTime());
        props.put("auto.offset.reset", "earliest");
        props.put("enable.auto.commit", "false");
        props.put("key.deserializer", StringDeserializer.class.getName());
        props.put("value.deserializer", StringDeserializer.class.getName());
        int seen = 0;
        long deadline = System.currentTimeMillis() + 60_000;
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
            consumer.subscribe(Collections.singletonList(topic));
            while (seen < count && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> record : consumer.poll(Duration.ofMillis(500))) {
                    StringBuilder headers = new StringBuilder();
                    for (Header header : record.headers()) {
                        if (headers.length() > 0) {
                            headers.append(';');
                        }
                        headers.append(header.key()).append('=')
                            .append(new String(header.value(), StandardCharsets.UTF_8));
                    }
                    System.out.println(record.partition() + "\t" + record.key() + "\t"
                        + record.value() + "\t" + headers);
                    seen++;
                }
            }
        }
        if (seen < count) {
            System.err.println("read " + seen + " of " + count + " records within 60 s");
            System.exit(1);
        }
    }
}
