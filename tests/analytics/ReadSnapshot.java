// Reads the BI snapshot through the DuckDB JDBC driver, as Tableau and Metabase do:
//   java -cp duckdb_jdbc-1.5.5.0.jar ReadSnapshot.java <snapshot file> <query>
// Prints the result as comma-separated lines.
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.Properties;

public class ReadSnapshot {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.setProperty("duckdb.read_only", "true");
        try (Connection con = DriverManager.getConnection("jdbc:duckdb:" + args[0], props);
             Statement st = con.createStatement();
             ResultSet rs = st.executeQuery(args[1])) {
            int columns = rs.getMetaData().getColumnCount();
            while (rs.next()) {
                StringBuilder line = new StringBuilder();
                for (int i = 1; i <= columns; i++) {
                    if (i > 1) line.append(',');
                    line.append(rs.getString(i));
                }
                System.out.println(line);
            }
        }
    }
}
